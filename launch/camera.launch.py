"""Launch pdn_node (a managed node), and on request a synthetic camera and RViz:

    ros2 launch pdn_ros camera.launch.py model:=/path/model.onnx cameras:=front,rear rviz:=true

pdn_node starts as a launch_ros LifecycleNode with its own `autostart` parameter off; with
`autostart:=true` (the default) this file emits the configure transition and, once the node
is inactive, the activate transition; `autostart:=false` leaves it unconfigured for a
lifecycle manager. The arguments and how they become parameters live in pdn_ros.launcher,
which `pdn-launch` (the same launch without ROS launch tools) uses too.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from pdn_ros.launcher import (
    ARGUMENTS,
    CAMERA_EXECUTABLE,
    NODE_EXECUTABLE,
    NODE_NAME,
    PACKAGE,
    PARAMS_FILE,
    RVIZ_CONFIG,
    camera_parameters,
    node_parameters,
    truthy,
)


def transition(node, transition_id):
    """An action that asks the lifecycle node `node` for a transition."""
    return EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id)
    )


def launch_setup(context, *args, **kwargs):
    """The nodes, once the argument values are known."""
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in ARGUMENTS}
    share = get_package_share_directory(PACKAGE)
    node = LifecycleNode(
        package=PACKAGE,
        executable=NODE_EXECUTABLE,
        name=NODE_NAME,
        namespace="",
        output="screen",
        parameters=[values["params_file"], {**node_parameters(values), "autostart": False}],
    )
    actions = [node]
    if truthy(values["autostart"]):
        actions += [
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=node,
                    goal_state="inactive",
                    entities=[transition(node, Transition.TRANSITION_ACTIVATE)],
                )
            ),
            transition(node, Transition.TRANSITION_CONFIGURE),
        ]
    if truthy(values["synthetic_camera"]):
        actions.append(
            Node(
                package=PACKAGE,
                executable=CAMERA_EXECUTABLE,
                output="screen",
                parameters=[camera_parameters(values)],
            )
        )
    if truthy(values["rviz"]):
        actions.append(
            Node(
                package="rviz2",
                executable="rviz2",
                output="screen",
                arguments=["-d", os.path.join(share, *RVIZ_CONFIG)],
            )
        )
    return actions


def generate_launch_description():
    """Arguments (params_file defaults to the installed config/pdn.yaml), then the nodes."""
    default_params = os.path.join(get_package_share_directory(PACKAGE), *PARAMS_FILE)
    declared = [
        DeclareLaunchArgument(
            a.name,
            default_value=default_params if a.name == "params_file" else a.default,
            description=a.description,
        )
        for a in ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=launch_setup)])
