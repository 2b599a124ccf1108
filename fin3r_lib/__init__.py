"""fin3r_lib: Fin3R-tuned feed-forward 3D reconstruction (VGGT, CUT3R) without ROS.

Models, the Fin3R adapter, the reconstruction session, robot-log reading, training and evaluation.
This package never imports rclpy or ROS message packages.
"""

__version__ = "0.1.0"
