"""Offline ROS tools: bag evaluation and replay, the synthetic camera, the demo. The only part
of pdn_ros that may import `training` (its metrics, datasets and scene generator); the node
itself never does (test/test_layering.py)."""
