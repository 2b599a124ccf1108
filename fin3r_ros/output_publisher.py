"""Publishers of the node's outputs: lifecycle publishers on a managed node, plain ones on a plain node.

A lifecycle publisher (`rclpy.lifecycle.LifecyclePublisher`) sends only while its node is active, as
ROS 2 managed nodes are expected to; the lifecycle node enables them on activate and disables them on
deactivate. /tf stays a plain publisher on both (tf2_ros' TransformBroadcaster makes one of its own).
"""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile


def create_output_publisher(node: Node, msg_type: Any, topic: str, qos: QoSProfile | int) -> Publisher:
    """`node.create_lifecycle_publisher` where the node is managed, else `node.create_publisher`."""
    create = getattr(node, "create_lifecycle_publisher", node.create_publisher)
    return create(msg_type, topic, qos)


def destroy_output_publisher(node: Node, publisher: Publisher) -> None:
    """Destroy a publisher made by `create_output_publisher` (a managed node also stops managing it)."""
    getattr(node, "destroy_lifecycle_publisher", node.destroy_publisher)(publisher)
