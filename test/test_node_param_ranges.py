"""Node-only numeric parameters out of their range: one error naming the ROS parameter, the range and the value."""

from __future__ import annotations

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from fin3r_lib.errors import InputError
from fin3r_ros.parameters import PARAMETERS, Range, declare_parameters

SPECS = {p.name: p for p in PARAMETERS}


@pytest.mark.parametrize(
    ("valid", "value", "inside"),
    [
        (Range(1), 1, True),
        (Range(1), 0, False),
        (Range(0, low_open=True), 0.0, False),
        (Range(0, low_open=True), 1e-9, True),
        (Range(0, high=1), 1.0, True),
        (Range(0, high=1), 1.5, False),
        (Range(0, low_open=True), float("nan"), False),
    ],
)
def test_range_membership(valid, value, inside):
    assert (value in valid) is inside


def test_range_wording():
    assert Range(1).text(integer=True) == "an integer >= 1"
    assert Range(0, low_open=True).text(integer=False) == "a number > 0"
    assert Range(0, high=1).text(integer=False) == "a number >= 0 and <= 1"


def _declare(overrides: dict) -> dict:
    """`declare_parameters` on a real rclpy node started with `overrides`."""
    context = Context()
    rclpy.init(args=[], context=context)
    try:
        node = Node(
            "ranges", context=context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
        )
        try:
            return declare_parameters(node)
        finally:
            node.destroy_node()
    finally:
        context.try_shutdown()


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("qos_depth", 0, "parameter qos_depth: expected an integer >= 1, got 0"),
        ("path_max_length", -5, "parameter path_max_length: expected an integer >= 1, got -5"),
        ("map_rate_hz", 0.0, "parameter map_rate_hz: expected a number > 0, got 0.0"),
        ("diagnostics_rate_hz", -1.0, "parameter diagnostics_rate_hz: expected a number > 0, got -1.0"),
        ("input_max_side", -1, "parameter input_max_side: expected an integer >= 0, got -1"),
        ("seed", -1, "parameter seed: expected an integer >= 0, got -1"),
    ],
)
def test_out_of_range_node_parameter_is_refused_at_declaration(name, bad, message):
    """Through a real rclpy node: the declared value is checked, the error names the ROS parameter."""
    with pytest.raises(InputError) as caught:
        _declare({name: bad})
    assert str(caught.value) == message


def test_odometry_scale_with_published_camera_tf_is_refused_at_declaration():
    """Two TF parents for the camera frame (the robot's tree and map_frame) is a start-up error, not a warning."""
    with pytest.raises(InputError) as caught:
        _declare({"scale_source": "odometry", "tf_mode": "publish"})
    assert str(caught.value) == (
        "parameters scale_source: odometry and tf_mode: publish: the camera frame would get a second TF "
        "parent (map_frame) besides the robot's odometry tree; use tf_mode: map_to_odom or none"
    )
    for tf_mode in ("map_to_odom", "none"):
        assert _declare({"scale_source": "odometry", "tf_mode": tf_mode})["tf_mode"] == tf_mode
    assert _declare({"scale_source": "depth", "tf_mode": "publish"})["tf_mode"] == "publish"


def test_boundary_values_are_accepted():
    for name, value in {"qos_depth": 1, "path_max_length": 1, "input_max_side": 0, "map_rate_hz": 1e-3}.items():
        SPECS[name].check(value)


def test_ranges_reach_the_descriptor_for_ros2_param_describe():
    assert SPECS["qos_depth"].descriptor().additional_constraints == "an integer >= 1"
    assert SPECS["map_rate_hz"].descriptor().additional_constraints == "a number > 0"
    assert SPECS["image_transport"].descriptor().additional_constraints == "one of: raw, compressed"
