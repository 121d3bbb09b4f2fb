"""PatchDriveNet ROS 2 integration: the perception node `pdn_node` and its parts (one module
per job, see docs/ros_node.md) and `pdn-launch`; the offline ROS tools (bag evaluation and
replay, the synthetic camera, the demo) are in `pdn_ros.tools`. The model runs through
`pdn_runtime` (docs/deployment.md, docs/architecture.md)."""
