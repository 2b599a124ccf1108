"""config/reconstruct.rviz shows only topics the node publishes, with QoS that matches, in the map frame."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from ros_harness import RosHarness

from fin3r_lib.models import build_model
from fin3r_ros.parameters import default_values
from fin3r_ros.reconstruct_node import ReconstructNode

RVIZ = Path(__file__).resolve().parents[1] / "config" / "reconstruct.rviz"
RELIABILITY = {"Reliable": ReliabilityPolicy.RELIABLE, "Best Effort": ReliabilityPolicy.BEST_EFFORT}
DURABILITY = {"Volatile": DurabilityPolicy.VOLATILE, "Transient Local": DurabilityPolicy.TRANSIENT_LOCAL}


def _displays(displays: list[dict]) -> list[dict]:
    """Every display, groups flattened."""
    out = []
    for d in displays:
        out += _displays(d.get("Displays", [])) if d["Class"] == "rviz_common/Group" else [d]
    return out


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(RVIZ.read_text())


def test_fixed_frame_is_the_map_frame_and_tf_is_shown(config) -> None:
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == default_values()["map_frame"]
    classes = {d["Class"] for d in _displays(manager["Displays"])}
    assert {"rviz_default_plugins/TF", "rviz_default_plugins/PointCloud2", "rviz_default_plugins/Path"} <= classes


def test_every_shown_topic_is_published_with_matching_qos(config) -> None:
    shown = [d for d in _displays(config["Visualization Manager"]["Displays"]) if "Topic" in d]
    assert {d["Topic"]["Value"] for d in shown} == {"map", "points", "depth", "pose", "path"}
    torch.manual_seed(0)
    with RosHarness() as ros:
        node = ReconstructNode(build_model("vggt-tiny"), context=ros.context, namespace="/cam")
        ros.nodes.append(node)
        published = dict(node.get_publisher_names_and_types_by_node(node.get_name(), node.get_namespace()))
        for display in shown:
            topic = display["Topic"]
            name = f"/cam/{topic['Value']}"
            assert name in published, f"RViz display {display['Name']!r} shows {name}, which the node does not publish"
            (info,) = node.get_publishers_info_by_topic(name)
            qos = info.qos_profile
            # a reliable subscriber needs a reliable publisher; a transient-local one needs a transient-local one
            if RELIABILITY[topic["Reliability Policy"]] == ReliabilityPolicy.RELIABLE:
                assert qos.reliability == ReliabilityPolicy.RELIABLE, name
            if DURABILITY[topic["Durability Policy"]] == DurabilityPolicy.TRANSIENT_LOCAL:
                assert qos.durability == DurabilityPolicy.TRANSIENT_LOCAL, name
