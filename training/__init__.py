"""Training-side code of PatchDriveNet: data, synthetic scenes, losses, trainer, evaluation.

Imports no ROS; nothing on the robot imports this package at run time.
"""
