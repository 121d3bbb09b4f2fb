"""A ROS 2 node under the repository's Fast DDS profile opens no UDP or TCP socket.

The check looks at the test process's own sockets: each /proc/self/fd entry that is a socket
names an inode, and the kernel's tables /proc/net/{udp,udp6,tcp,tcp6,raw,raw6} list the inet
sockets of this network namespace by inode with their local address. A node using stock Fast DDS
shows up here with several UDP sockets bound to 0.0.0.0 (discovery multicast and unicast ports).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from rclpy.context import Context

INET_TABLES = ("udp", "udp6", "tcp", "tcp6", "raw", "raw6")


@dataclass(frozen=True)
class InetSocket:
    """One inet socket of this process: protocol table, local address and port."""

    table: str
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    inode: int


def _decode_address(hex_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Decode a /proc/net address: 32-bit words in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_addr)
    host_order = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(host_order) == 4:
        return ipaddress.IPv4Address(host_order)
    return ipaddress.IPv6Address(host_order)


def own_socket_inodes() -> set[int]:
    """Return the inodes of all sockets this process holds open."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed while listing
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def own_inet_sockets() -> list[InetSocket]:
    """Return this process's UDP, TCP and raw sockets with their local addresses."""
    mine = own_socket_inodes()
    found = []
    for table in INET_TABLES:
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            inode = int(cols[9])
            if inode in mine:
                addr_hex, port_hex = cols[1].split(":")
                found.append(InetSocket(table, _decode_address(addr_hex), int(port_hex, 16), inode))
    return found


def test_address_decoding() -> None:
    """/proc/net addresses decode to the right IPv4 and IPv6 addresses."""
    assert _decode_address("0100007F") == ipaddress.IPv4Address("127.0.0.1")
    assert _decode_address("00000000") == ipaddress.IPv4Address("0.0.0.0")
    assert _decode_address("00000000000000000000000001000000") == ipaddress.IPv6Address("::1")
    assert _decode_address("0000000000000000FFFF00000100007F") == ipaddress.IPv6Address(
        "::ffff:127.0.0.1"
    )


def test_socket_inspection_sees_inet_sockets() -> None:
    """The inspection finds UDP and TCP sockets with their address (so the real check can fail)."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
    ):
        udp.bind(("127.0.0.1", 0))
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(1)  # a bound TCP socket only shows in /proc/net/tcp once it listens
        found = {(s.table, str(s.address), s.port) for s in own_inet_sockets()}
        assert ("udp", "127.0.0.1", udp.getsockname()[1]) in found
        assert ("tcp", "127.0.0.1", tcp.getsockname()[1]) in found


def test_node_opens_no_udp_or_tcp_socket(ros_context: Context) -> None:
    """A node with a publisher and a subscription, spun for a while, holds no inet socket."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from std_msgs.msg import String

    before = {s.inode for s in own_inet_sockets()}
    node = Node("pdn_test_no_network", context=ros_context)
    topic = f"/pdn_test_no_network_{uuid.uuid4().hex[:12]}"
    received: list[String] = []
    pub = node.create_publisher(String, topic, 10)
    node.create_subscription(String, topic, received.append, 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            pub.publish(String(data="hello"))
            executor.spin_once(timeout_sec=0.1)
        opened = [s for s in own_inet_sockets() if s.inode not in before]
    finally:
        executor.shutdown()
        node.destroy_node()

    assert received, "the node did not even talk to itself; the check would prove nothing"
    non_loopback = [s for s in opened if not s.address.is_loopback]
    assert not non_loopback, f"sockets on non-loopback addresses: {non_loopback}"
    udp = [s for s in opened if s.table.startswith("udp")]
    assert not udp, f"UDP sockets opened (SHM-only profile not in effect?): {udp}"
    assert not opened, f"inet sockets opened: {opened}"
