"""What `launch/reconstruct.launch.py` launches, as plain functions of its arguments (testable without `launch`).

The launch file declares `LAUNCH_ARGUMENTS`, and turns `launch_nodes(values)` into launch_ros `Node`
actions. Empty `model`, `checkpoint`, `adapter` and `device` keep the params file's values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fin3r_lib.errors import InputError

PACKAGE = "fin3r_ros"
EXECUTABLE = "reconstruct_node"
LIFECYCLE_EXECUTABLE = "reconstruct_lifecycle_node"


@dataclass(frozen=True)
class LaunchArgument:
    """One launch argument: name, default (launch arguments are strings) and description."""

    name: str
    default: str
    description: str


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("params_file", "", "Node parameters YAML; empty = the package's config/reconstruct.yaml."),
    LaunchArgument("model", "", "Backbone name (e.g. vggt-1b, vggt-tiny); empty = the params file's."),
    LaunchArgument("checkpoint", "", "Weights (file, folder, repo id, default, none); empty = the params file's."),
    LaunchArgument("adapter", "", "Fin3R adapter file; empty = the params file's."),
    LaunchArgument("image", "image", "Camera image topic (the compressed topic is <image>/compressed)."),
    LaunchArgument("camera_info", "camera_info", "CameraInfo topic of the camera."),
    LaunchArgument("image_transport", "raw", "raw or compressed."),
    LaunchArgument("device", "", "Torch device (auto, cpu, cuda, ...); empty = the params file's."),
    LaunchArgument("namespace", "", "Namespace of the node (and of its relative output topics)."),
    LaunchArgument("use_sim_time", "false", "Use /clock (ros2 bag play --clock)."),
    LaunchArgument("rviz", "false", "Also start RViz with config/reconstruct.rviz."),
    LaunchArgument(
        "lifecycle", "false", "Start the managed (lifecycle) node, configured and activated at launch (autostart)."
    ),
)

#: launch arguments that override the node parameter of the same name when not empty
_PARAMETER_OVERRIDES = ("model", "checkpoint", "adapter", "device", "image_transport")


def parse_bool(name: str, text: str) -> bool:
    """A launch argument's boolean value ('true'/'false', any case, or 1/0)."""
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InputError(f"launch argument {name}: expected true or false, got {text!r}")


def package_share() -> Path:
    """The installed package's share directory, or the source tree when the package is not installed."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return Path(__file__).resolve().parents[1]
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset
        return Path(__file__).resolve().parents[1]


def default_params_file() -> Path:
    """config/reconstruct.yaml of the package."""
    return package_share() / "config" / "reconstruct.yaml"


def rviz_config_file() -> Path:
    """config/reconstruct.rviz of the package."""
    return package_share() / "config" / "reconstruct.rviz"


def _checked(values: Mapping[str, str]) -> dict[str, str]:
    known = {a.name for a in LAUNCH_ARGUMENTS}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown launch arguments {unknown}; expected some of {sorted(known)}")
    full = {a.name: a.default for a in LAUNCH_ARGUMENTS} | dict(values)
    if full["image_transport"] not in ("raw", "compressed"):
        raise InputError(
            f"launch argument image_transport: expected raw or compressed, got {full['image_transport']!r}"
        )
    return full


def node_parameters(values: Mapping[str, str]) -> list[Any]:
    """The node's `parameters`: the params file, then the non-empty overrides and use_sim_time."""
    v = _checked(values)
    params_file = v["params_file"] or str(default_params_file())
    overrides: dict[str, Any] = {k: v[k] for k in _PARAMETER_OVERRIDES if v[k]}
    overrides["use_sim_time"] = parse_bool("use_sim_time", v["use_sim_time"])
    return [params_file, overrides]


def node_remappings(values: Mapping[str, str]) -> list[tuple[str, str]]:
    """Remap the node's relative inputs onto the camera's topics."""
    v = _checked(values)
    image = "image/compressed" if v["image_transport"] == "compressed" else "image"
    source = f"{v['image']}/compressed" if v["image_transport"] == "compressed" else v["image"]
    return [(image, source), ("camera_info", v["camera_info"])]


def launch_nodes(values: Mapping[str, str]) -> list[dict[str, Any]]:
    """Keyword arguments of each launch_ros `Node` to start: the reconstruction node, and RViz when asked.

    With `lifecycle:=true` the first is the managed node's, with `autostart: True`: the launch file
    makes it a launch_ros `LifecycleNode` that it configures and activates.
    """
    v = _checked(values)
    node: dict[str, Any] = {
        "package": PACKAGE,
        "executable": EXECUTABLE,
        "name": EXECUTABLE,
        "namespace": v["namespace"],
        "parameters": node_parameters(v),
        "remappings": node_remappings(v),
        "output": "screen",
    }
    if parse_bool("lifecycle", v["lifecycle"]):
        node |= {"executable": LIFECYCLE_EXECUTABLE, "autostart": True}
    nodes = [node]
    if parse_bool("rviz", v["rviz"]):
        nodes.append(
            {
                "package": "rviz2",
                "executable": "rviz2",
                "name": "rviz2",
                "namespace": v["namespace"],
                "arguments": ["-d", str(rviz_config_file())],
                "parameters": [{"use_sim_time": parse_bool("use_sim_time", v["use_sim_time"])}],
                "output": "screen",
            }
        )
    return nodes
