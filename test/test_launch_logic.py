"""The launch file's logic without `launch`: arguments, parameters, remappings, RViz; the params file in a real node."""

from __future__ import annotations

import pytest
import rclpy
import torch
from rclpy.context import Context

from fin3r_lib.errors import InputError
from fin3r_lib.models import build_model
from fin3r_ros.launch_logic import (
    LAUNCH_ARGUMENTS,
    default_params_file,
    launch_nodes,
    node_parameters,
    rviz_config_file,
)
from fin3r_ros.parameters import default_values
from fin3r_ros.reconstruct_node import ReconstructNode

REQUIRED = {
    "params_file",
    "model",
    "checkpoint",
    "adapter",
    "image",
    "camera_info",
    "image_transport",
    "device",
    "namespace",
    "use_sim_time",
    "rviz",
    "lifecycle",
}


def test_arguments_cover_the_documented_set() -> None:
    assert {a.name for a in LAUNCH_ARGUMENTS} == REQUIRED
    assert all(a.description for a in LAUNCH_ARGUMENTS)


def test_defaults_launch_the_node_alone_with_the_package_params_file() -> None:
    (node,) = launch_nodes({})
    assert (node["package"], node["executable"], node["namespace"]) == ("fin3r_ros", "reconstruct_node", "")
    assert node["parameters"] == [str(default_params_file()), {"image_transport": "raw", "use_sim_time": False}]
    assert default_params_file().is_file() and rviz_config_file().is_file()
    assert node["remappings"] == [("image", "image"), ("camera_info", "camera_info")]


def test_arguments_become_overrides_remappings_and_rviz() -> None:
    values = {
        "model": "vggt-tiny",
        "checkpoint": "/weights/tiny.safetensors",
        "device": "cpu",
        "image": "/camera/color/image_raw",
        "camera_info": "/camera/color/camera_info",
        "image_transport": "compressed",
        "namespace": "front",
        "use_sim_time": "True",
        "rviz": "true",
        "params_file": "/robot/fin3r.yaml",
    }
    node, rviz = launch_nodes(values)
    assert node["parameters"] == [
        "/robot/fin3r.yaml",
        {
            "model": "vggt-tiny",
            "checkpoint": "/weights/tiny.safetensors",
            "device": "cpu",
            "image_transport": "compressed",
            "use_sim_time": True,
        },
    ]
    assert node["remappings"] == [
        ("image/compressed", "/camera/color/image_raw/compressed"),
        ("camera_info", "/camera/color/camera_info"),
    ]
    assert node["namespace"] == rviz["namespace"] == "front"
    assert rviz["arguments"] == ["-d", str(rviz_config_file())]
    assert rviz["parameters"] == [{"use_sim_time": True}]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rviz": "maybe"}, "rviz: expected true or false"),
        ({"image_transport": "theora"}, "expected raw or compressed"),
        ({"camra_info": "/x"}, "unknown launch arguments"),
    ],
)
def test_bad_arguments_are_rejected(values, message) -> None:
    with pytest.raises(InputError, match=message):
        launch_nodes(values)


def test_params_file_and_overrides_load_into_a_real_node() -> None:
    params_file, overrides = node_parameters({"image_transport": "compressed"})
    context = Context()
    rclpy.init(args=["--ros-args", "--params-file", params_file], context=context)
    try:
        torch.manual_seed(0)
        node = ReconstructNode(
            build_model("vggt-tiny"),
            context=context,
            parameter_overrides=[
                rclpy.parameter.Parameter(k, value=v) for k, v in overrides.items() if k != "use_sim_time"
            ],
        )
        try:
            assert node.values == default_values() | {"image_transport": "compressed"}
            assert "/image/compressed" in dict(node.get_subscriber_names_and_types_by_node(node.get_name(), "/"))
        finally:
            node.destroy_node()
    finally:
        context.try_shutdown()


def test_lifecycle_true_launches_the_managed_node_with_autostart() -> None:
    (plain,) = launch_nodes({})
    (managed,) = launch_nodes({"lifecycle": "true", "namespace": "front"})
    assert "autostart" not in plain and plain["executable"] == "reconstruct_node"
    assert managed["executable"] == "reconstruct_lifecycle_node" and managed["autostart"] is True
    assert managed["name"] == "reconstruct_node" and managed["namespace"] == "front"
    assert {k: v for k, v in managed.items() if k not in ("executable", "autostart", "namespace")} == {
        k: v for k, v in plain.items() if k not in ("executable", "namespace")
    }
    with pytest.raises(InputError, match="launch argument lifecycle: expected true or false, got 'maybe'"):
        launch_nodes({"lifecycle": "maybe"})
