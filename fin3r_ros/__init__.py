"""fin3r_ros: the ROS 2 layer of Fin3R reconstruction (conversions, the node, TF); thin over fin3r_lib."""
