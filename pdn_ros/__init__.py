"""PatchDriveNet ROS 2 integration (the detection node arrives in a later release)."""
