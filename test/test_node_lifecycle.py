"""The managed node through the real rclpy lifecycle services (change_state / get_state), ground-truth backend."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from gt_backend import GroundTruthModel
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from node_fixtures import RELIABLE, SENSOR_QOS, TEST_PARAMS, header
from rclpy.lifecycle import LifecyclePublisher
from rclpy.parameter import Parameter
from ros_harness import RosHarness
from sensor_msgs.msg import Image

from fin3r_ros.conversions import rgb_to_image
from fin3r_ros.lifecycle_node import ReconstructLifecycleNode

NODE = "/cam/reconstruct_node"


@pytest.fixture
def ros():
    with RosHarness() as harness:
        yield harness


class Manager:
    """A lifecycle manager node: calls change_state / get_state of the node under test, and a camera + recorder."""

    def __init__(self, ros: RosHarness, node: ReconstructLifecycleNode) -> None:
        self.ros, self.node = ros, node
        client = ros.node("manager", namespace="/cam")
        self.change = client.create_client(ChangeState, f"{NODE}/change_state")
        self.get = client.create_client(GetState, f"{NODE}/get_state")
        self.pub = client.create_publisher(Image, "image", SENSOR_QOS)
        self.depths: list[Image] = []
        client.create_subscription(Image, "depth", self.depths.append, RELIABLE)
        assert ros.spin_until(lambda: self.change.service_is_ready() and self.get.service_is_ready(), timeout=10.0)

    def _call(self, client, request):
        future = client.call_async(request)
        assert self.ros.spin_until(future.done, timeout=30.0), "no answer from the lifecycle service"
        return future.result()

    def transition(self, transition_id: int) -> bool:
        """Ask for a transition; its success."""
        return self._call(self.change, ChangeState.Request(transition=Transition(id=transition_id))).success

    def state(self) -> int:
        return self._call(self.get, GetState.Request()).current_state.id

    def send(self, rgb: np.ndarray, stamp: float) -> bool:
        """Publish an image once the node subscribes; True when its depth came out."""
        if not self.ros.spin_until(lambda: self.pub.get_subscription_count() > 0, timeout=5.0):
            return False
        count = len(self.depths)
        self.pub.publish(rgb_to_image(rgb, header(stamp)))
        return self.ros.spin_until(lambda: len(self.depths) > count, timeout=30.0)


def topics(node: ReconstructLifecycleNode) -> set[str]:
    """The topics the node itself subscribes to (its own entities: other test runs may share the domain)."""
    return {s.topic_name for s in node.subscriptions}


def managed(ros: RosHarness, backend=None, **params) -> ReconstructLifecycleNode:
    overrides = [Parameter(k, value=v) for k, v in {**TEST_PARAMS, **params}.items()]
    node = ReconstructLifecycleNode(backend, context=ros.context, namespace="/cam", parameter_overrides=overrides)
    return ros.add_node(node)


def test_configure_activate_deactivate_cleanup_shutdown(ros, small_scenes) -> None:
    node = managed(ros, GroundTruthModel.from_fixture(small_scenes))
    m = Manager(ros, node)
    rgb = small_scenes["rgb"]
    assert m.state() == State.PRIMARY_STATE_UNCONFIGURED and not hasattr(node, "runner")

    assert m.transition(Transition.TRANSITION_CONFIGURE)
    assert m.state() == State.PRIMARY_STATE_INACTIVE
    assert node.model is not None and topics(node) == set()  # loaded, not listening
    assert "/cam/depth" in {p.topic_name for p in node.publishers}

    assert m.transition(Transition.TRANSITION_ACTIVATE)
    assert m.state() == State.PRIMARY_STATE_ACTIVE
    assert topics(node) == {"/cam/image", "/cam/camera_info"}
    assert m.send(rgb[0], 100.0) and m.send(rgb[10], 100.1)
    keyframes = node.session.num_keyframes
    assert keyframes >= 1

    assert m.transition(Transition.TRANSITION_DEACTIVATE)
    assert m.state() == State.PRIMARY_STATE_INACTIVE
    assert topics(node) == set()
    model = node.model
    assert node.session.num_keyframes == keyframes  # paused: the model and the reconstruction stay

    assert m.transition(Transition.TRANSITION_ACTIVATE)
    assert node.model is model and m.send(rgb[20], 100.2)
    assert node.session.num_keyframes >= keyframes
    assert m.transition(Transition.TRANSITION_DEACTIVATE)

    assert m.transition(Transition.TRANSITION_CLEANUP)
    assert m.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert not hasattr(node, "runner") and not hasattr(node, "model")
    assert "/cam/depth" not in {p.topic_name for p in node.publishers}  # publishers gone

    assert m.transition(Transition.TRANSITION_CONFIGURE)  # configurable again after cleanup
    assert m.transition(Transition.TRANSITION_INACTIVE_SHUTDOWN)
    assert m.state() == State.PRIMARY_STATE_FINALIZED
    assert not hasattr(node, "runner")


def test_bad_checkpoint_fails_configure_with_the_reason(ros, tmp_path) -> None:
    garbage = tmp_path / "weights.safetensors"
    garbage.write_bytes(b"this is not a checkpoint")
    node = managed(ros, model="vggt-tiny", checkpoint=str(garbage), device="cpu")
    m = Manager(ros, node)
    assert not m.transition(Transition.TRANSITION_CONFIGURE)
    assert m.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert str(garbage) in node.configure_error and "\n" not in node.configure_error
    assert not m.transition(Transition.TRANSITION_ACTIVATE)  # nothing to activate
    assert topics(node) == set()


def test_out_of_range_parameter_fails_configure(ros) -> None:
    node = managed(ros, qos_depth=0)
    m = Manager(ros, node)
    assert not m.transition(Transition.TRANSITION_CONFIGURE)
    assert m.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert node.configure_error == "parameter qos_depth: expected an integer >= 1, got 0"


def test_outputs_are_lifecycle_publishers_that_send_only_while_active(ros, small_scenes) -> None:
    node = managed(ros, GroundTruthModel.from_fixture(small_scenes))
    m = Manager(ros, node)
    poses: list[PoseStamped] = []
    ros.node("listener", namespace="/cam").create_subscription(PoseStamped, "pose", poses.append, RELIABLE)

    def arrives() -> bool:
        """Publish one pose on the node's own publisher; True when it reached the listener."""
        publisher = node.outputs.pub_pose
        assert ros.spin_until(lambda: publisher.get_subscription_count() > 0, timeout=5.0)
        count = len(poses)
        publisher.publish(PoseStamped())
        return ros.spin_until(lambda: len(poses) > count, timeout=1.0)

    assert m.transition(Transition.TRANSITION_CONFIGURE)
    outputs = (node.outputs.pub_depth, node.outputs.pub_points, node.outputs.latched.pub_map)
    assert all(isinstance(p, LifecyclePublisher) for p in outputs)
    assert not arrives()  # inactive: nothing goes out
    assert m.transition(Transition.TRANSITION_ACTIVATE)
    assert arrives()
    assert m.transition(Transition.TRANSITION_DEACTIVATE)
    assert not arrives()
    # cleanup drops them from the managed entities: the next configure's publishers are the ones activated
    assert m.transition(Transition.TRANSITION_CLEANUP) and m.transition(Transition.TRANSITION_CONFIGURE)
    assert m.transition(Transition.TRANSITION_ACTIVATE)
    assert arrives() and m.send(small_scenes["rgb"][0], 100.0)
