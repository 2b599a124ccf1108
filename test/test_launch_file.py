"""launch/reconstruct.launch.py itself, where launch_ros imports (a ROS 2 install); skipped on PyPI-only machines."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fin3r_ros.launch_logic import LAUNCH_ARGUMENTS

pytest.importorskip("launch_ros", reason="launch_ros is not installable from PyPI; this runs on a ROS 2 install")

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "reconstruct.launch.py"


def test_launch_file_declares_every_argument_and_starts_the_node() -> None:
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location("reconstruct_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = [e for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    assert [d.name for d in declared] == [a.name for a in LAUNCH_ARGUMENTS]

    context = LaunchContext()
    for d in declared:
        context.launch_configurations[d.name] = d.default_value[0].text if d.default_value else ""
    context.launch_configurations["rviz"] = "true"
    (opaque,) = [e for e in description.entities if isinstance(e, OpaqueFunction)]
    nodes = opaque.execute(context)
    assert [n.node_package for n in nodes] == ["fin3r_ros", "rviz2"]
