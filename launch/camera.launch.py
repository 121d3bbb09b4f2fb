"""Launch pdn_node, and on request a synthetic camera and RViz:

    ros2 launch pdn_ros camera.launch.py model:=/path/model.onnx cameras:=front,rear rviz:=true

The arguments and how they become parameters live in pdn_ros.launcher, which `pdn-launch`
(the same launch without ROS launch tools) uses too.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

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


def launch_setup(context, *args, **kwargs):
    """The nodes, once the argument values are known."""
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in ARGUMENTS}
    share = get_package_share_directory(PACKAGE)
    actions = [
        Node(
            package=PACKAGE,
            executable=NODE_EXECUTABLE,
            name=NODE_NAME,
            output="screen",
            parameters=[values["params_file"], node_parameters(values)],
        )
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
