"""`ros2 launch fin3r_ros reconstruct.launch.py [image:=/camera/color/image_raw] [rviz:=true] [lifecycle:=true] ...`.

Thin: the arguments and what they start live in `fin3r_ros.launch_logic` (tested without `launch`).
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import LifecycleNode, Node

from fin3r_ros.launch_logic import LAUNCH_ARGUMENTS, launch_nodes
from launch import LaunchDescription


def _nodes(context, *args, **kwargs):
    values = {a.name: context.launch_configurations[a.name] for a in LAUNCH_ARGUMENTS}
    return [(LifecycleNode if "autostart" in d else Node)(**d) for d in launch_nodes(values)]


def generate_launch_description() -> LaunchDescription:
    """The launch arguments, and the nodes they select."""
    arguments = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in LAUNCH_ARGUMENTS
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
