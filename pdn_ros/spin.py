"""Running a node process: create the node (a start-up error is one log line and exit
status 1), spin until SIGINT/SIGTERM or until it says it is done, then close it with further
signals ignored, so that stopping, even while starting, never ends in a traceback."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.logging import get_logger
from rclpy.node import Node


def _ignore(signum: int, frame: object) -> None:
    """A Python-level handler that does nothing (a late signal must not interrupt closing)."""


def spin_and_close(
    node: Node, close: Callable[[], None], done: threading.Event | None = None
) -> None:
    """Spin `node` until rclpy's signal handlers shut its context down or `done` is set,
    then call `close` and shut rclpy down.

    rclpy's handler also passes SIGINT on to Python's, whose KeyboardInterrupt can land at
    any later moment; from the end of spinning on, SIGINT and SIGTERM are ignored."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        while rclpy.ok(context=node.context) and not (done is not None and done.is_set()):
            try:
                executor.spin_once(timeout_sec=0.1)
            except RuntimeError:
                # A signal can shut the context down while a message is being taken; rclpy
                # then fails inside the take. That is the shutdown we were waiting for.
                if rclpy.ok(context=node.context):
                    raise
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _ignore)
        executor.shutdown()
        close()
        rclpy.try_shutdown()


def run_node(
    name: str,
    build: Callable[[], Node],
    errors: tuple[type[Exception], ...],
    args: Sequence[str] | None = None,
) -> int:
    """Init rclpy, build the node, spin it until stopped, close it (its `close()`; a `done`
    event attribute, where it has one, also ends the spinning). Returns the exit status: 1
    after one fatal log line when `build` raises one of `errors`, else 0, also when a signal
    arrives before the node is up."""
    rclpy.init(args=args)
    try:
        node = build()
    except errors as err:
        stopped = not rclpy.ok()  # a signal shut the context down while the node was starting
        if not stopped:
            get_logger(name).fatal(f"cannot start: {err}")
        rclpy.try_shutdown()
        return 0 if stopped else 1
    except (KeyboardInterrupt, Exception):
        if rclpy.ok():  # not stopped by a signal: a real bug, keep its traceback
            raise
        return 0
    spin_and_close(node, node.close, getattr(node, "done", None))
    return 0
