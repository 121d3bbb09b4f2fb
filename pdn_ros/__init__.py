"""PatchDriveNet ROS 2 integration: the perception node `pdn_node` and its parts (one module
per job, see docs/ros_node.md), the synthetic camera, `pdn-launch`, and the inference
backends (`pdn_ros.backends`, docs/deployment.md)."""
