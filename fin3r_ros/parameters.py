"""The node's parameters and topics, each documented once, here.

`PARAMETERS` lists every parameter with its default and description; the session's settings take
their defaults from `fin3r_lib.session.SessionConfig`, so the node, the YAML file and the library
cannot drift apart (a test checks `config/reconstruct.yaml` against `default_values()`).
`TOPICS` lists what the node subscribes to, publishes and serves. `render_tables()` writes the
README's "Topics and parameters" tables from both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.node import Node

from fin3r_lib.errors import InputError, SettingError
from fin3r_lib.model_options import PRECISIONS, ModelOptions
from fin3r_lib.runner_options import RunnerOptions
from fin3r_lib.session.config import SessionConfig
from fin3r_lib.session.scale import SCALE_SOURCES, ScaleConfig
from fin3r_ros.tf_modes import TF_MODES

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
}
#: the ROS name of each parameter type, as `ros2 param describe` prints it
TYPE_NAMES = {bool: "bool", int: "integer", float: "double", str: "string"}


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric parameter: from `low` (excluded when `low_open`) up to `high` (included)."""

    low: float
    low_open: bool = False
    high: float = math.inf

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def text(self, integer: bool) -> str:
        """What the range expects, e.g. `an integer >= 1`, `a number > 0`."""
        kind = "an integer" if integer else "a number"
        low = f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        return low if math.isinf(self.high) else f"{low} and <= {self.high:g}"


AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
POSITIVE = Range(0, low_open=True)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default (its type is the parameter's type), description, allowed values or range."""

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    valid: Range | None = None

    @property
    def constraint(self) -> str:
        """The allowed values in words (`one of: a, b`, `an integer >= 1`), empty when any value of the type goes."""
        if self.choices:
            return f"one of: {', '.join(self.choices)}"
        return self.valid.text(type(self.default) is int) if self.valid else ""

    def check(self, value: Any) -> None:
        """Raise InputError naming the parameter when `value` is not one of its choices or out of its range."""
        if (self.choices and value not in self.choices) or (self.valid and value not in self.valid):
            expected = f"one of {self.choices}" if self.choices else self.constraint
            raise InputError(f"parameter {self.name}: expected {expected}, got {value!r}")

    @property
    def type_name(self) -> str:
        """The parameter's ROS type: bool, integer, double or string."""
        return TYPE_NAMES[type(self.default)]

    def descriptor(self) -> ParameterDescriptor:
        """The ROS descriptor (read-only: the node reads parameters once, at start-up)."""
        return ParameterDescriptor(
            name=self.name,
            type=_TYPES.get(type(self.default), ParameterType.PARAMETER_STRING),
            description=self.description,
            additional_constraints=self.constraint,
            read_only=True,
        )


_SESSION_DESCRIPTIONS = {
    "context_size": "Max keyframes in a windowed backend's context (the current frame comes on top).",
    "keyframe_min_flow_px": "Median sparse optical flow (input pixels) vs the last keyframe that makes a keyframe.",
    "keyframe_max_interval_s": "A keyframe at least this often (seconds), even without motion.",
    "min_confidence": "Absolute depth-confidence floor for the clouds (VGGT/CUT3R confidences are > 1).",
    "confidence_top_fraction": "Keep this most-confident fraction of each frame's pixels in the clouds (1 = all).",
    "voxel_size": "Map voxel size (world units: metres for metric backends).",
    "max_map_points": "Bound on the map; the least recently observed voxels are dropped first.",
    "map_pixel_stride": "Every n-th pixel row and column enters the map.",
    "cloud_pixel_stride": "Every n-th pixel row and column enters the per-frame `points` cloud.",
    "reset_on_time_jump": "Reset the reconstruction when image time goes backwards (a looping bag).",
    "align_samples": "Pixels per keyframe kept to fit the Sim(3) aligning windowed predictions.",
    "align_trim": "Fraction of worst residuals dropped before the final Sim(3) fit.",
    "max_trajectory": "Poses kept in the session's trajectory (oldest dropped first).",
    "use_camera_intrinsics": "Use the paired camera_info's K (rescaled to the output grid) for depth/camera_info, "
    "points and map instead of the model's estimate (kept as a focal ratio in /diagnostics).",
}

_MODEL = ModelOptions()  # the node's model defaults are the library's (same as `fin3r reconstruct`)

NODE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("model", _MODEL.model, "Backbone name (`fin3r_lib.models.list_models()`), e.g. vggt-1b, vggt-tiny."),
    ParamSpec(
        "checkpoint",
        _MODEL.checkpoint,
        "Weights: `default` (the model's released weights, Hugging Face cache), a local file or folder, a "
        "Hugging Face repo id, or `none` (random initial weights: tests and demos only).",
    ),
    ParamSpec(
        "adapter",
        _MODEL.adapter,
        "Fin3R adapter: a .safetensors file, a PEFT adapter folder or Hub repo id, or the authors' .pth; "
        "empty = the base model.",
    ),
    ParamSpec("device", _MODEL.device, "Torch device: `auto` (cuda when available, else cpu), cpu, cuda, cuda:1, ..."),
    ParamSpec(
        "precision",
        _MODEL.precision,
        "Weights dtype; `auto` = fp32 weights (autocast on CUDA).",
        PRECISIONS,
    ),
    ParamSpec("seed", _MODEL.seed, "Seed of the random initial weights of `checkpoint: none`.", valid=AT_LEAST_0),
    ParamSpec(
        "compile",
        _MODEL.compile,
        "torch.compile the transformer blocks (faster steps; the first frame of each size compiles: slow).",
    ),
    ParamSpec(
        "input_max_side",
        0,
        "Input resolution: images whose long side is larger are downscaled first (0 = as received).",
        valid=AT_LEAST_0,
    ),
    ParamSpec(
        "output_resolution",
        "input",
        "Size of depth/confidence: `input` = the received image's, `model` = the (downscaled) size the model ran at.",
        ("input", "model"),
    ),
    ParamSpec(
        "image_transport",
        "raw",
        "`raw`: subscribe `image`; `compressed`: subscribe `image/compressed`.",
        ("raw", "compressed"),
    ),
    ParamSpec(
        "qos_reliability",
        "best_effort",
        "Reliability of the image and camera_info subscriptions.",
        ("best_effort", "reliable"),
    ),
    ParamSpec("qos_depth", 5, "History depth of the image and camera_info subscriptions.", valid=AT_LEAST_1),
    ParamSpec("map_rate_hz", 1.0, "Max rate of `map` (when it changed) and `path` publications.", valid=POSITIVE),
    ParamSpec("path_max_length", 10000, "Poses kept in `path` (oldest dropped first).", valid=AT_LEAST_1),
    ParamSpec("map_frame", "map", "Fixed frame of `map`, `pose`, `path` and the TF parent (z up, REP 105)."),
    ParamSpec(
        "camera_frame", "camera_optical_frame", "Camera optical frame used when an image has no header.frame_id."
    ),
    ParamSpec(
        "tf_mode",
        "publish",
        "`publish`: TF map_frame -> camera optical frame at image time; `map_to_odom`: TF map_frame -> odom_frame "
        "such that map -> odom -> ... -> camera through the robot's own tree gives the reconstructed camera pose "
        "(REP 105, like SLAM packages); `none`: no TF.",
        TF_MODES,
    ),
    ParamSpec("odom_frame", "odom", "The robot's odometry frame (`tf_mode: map_to_odom`, `scale_source: odometry`)."),
    ParamSpec(
        "tf_wait_s",
        0.1,
        "A frame whose odom_frame -> camera transform is not known yet waits at most this long (s) for it on /tf "
        "(odometry published after the image), then goes on without odometry (counted in /diagnostics).",
        valid=Range(0.0, high=2.0),
    ),
    ParamSpec(
        "pairing_tolerance_s",
        0.02,
        "camera_info and sensor depth pair with the image of the same stamp, else the nearest within this (s).",
        valid=AT_LEAST_0,
    ),
    ParamSpec(
        "pairing_timeout_s",
        0.1,
        "An image with no camera_info (sensor depth) at its own stamp waits at most about this long (node clock, s; "
        "checked every quarter of it) for one at or past stamp + `pairing_tolerance_s`, then is decided: the nearest "
        "within the tolerance, else unpaired (counted in /diagnostics).",
        valid=Range(0.01, high=10.0),
    ),
    ParamSpec(
        "rectify",
        False,
        "`false`: images must be rectified (`image_rect`); a camera_info with non-zero D is warned about once. "
        "`true`: undistort with OpenCV (plumb_bob, rational_polynomial, equidistant) before the model.",
    ),
    ParamSpec(
        "scale_source",
        "none",
        "Metric scale: `none` (model units), `odometry` (fit to TF odom_frame -> camera at keyframe stamps), "
        "`depth` (median ratio to the `sensor_depth` topic). Once known, everything published is in metres.",
        SCALE_SOURCES,
    ),
    ParamSpec("scale_window", 30, "Scale samples kept (keyframes for odometry, frames for depth).", valid=AT_LEAST_1),
    ParamSpec(
        "scale_min_baseline_m",
        0.3,
        "Odometry scale: the window must span this far (m) before a scale is given.",
        valid=POSITIVE,
    ),
    ParamSpec(
        "scale_min_pair_m", 0.05, "Odometry scale: keyframe pairs closer than this (m) are not used.", valid=POSITIVE
    ),
    ParamSpec(
        "scale_trim", 0.2, "Fraction of lowest and of highest scale ratios dropped (below 0.5).", valid=AT_LEAST_0
    ),
    ParamSpec(
        "scale_min_valid_pixels",
        500,
        "Depth scale: fewer valid pixels in a frame -> no sample from it.",
        valid=AT_LEAST_1,
    ),
    ParamSpec("scale_max_depth_m", 10.0, "Depth scale: sensor readings beyond this (m) are ignored.", valid=POSITIVE),
    ParamSpec("diagnostics_rate_hz", 1.0, "Rate of the `/diagnostics` status.", valid=POSITIVE),
)


def _session_parameters() -> tuple[ParamSpec, ...]:
    defaults = SessionConfig()
    return tuple(
        ParamSpec(f.name, getattr(defaults, f.name), _SESSION_DESCRIPTIONS[f.name]) for f in fields(SessionConfig)
    )


PARAMETERS: tuple[ParamSpec, ...] = NODE_PARAMETERS + _session_parameters()


@dataclass(frozen=True)
class TopicSpec:
    """One interface of the node: relative or absolute name, kind, message type, QoS, description."""

    name: str
    kind: str  # "subscription" | "publisher" | "service"
    msg_type: str
    qos: str
    description: str


SENSOR_QOS = "`qos_reliability`, keep last `qos_depth`, volatile"
STREAM_QOS = "reliable, keep last 5, volatile"
LATCHED_QOS = "reliable, keep last 1, transient local"

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("image", "subscription", "sensor_msgs/msg/Image", SENSOR_QOS, "Camera images (`image_transport: raw`)."),
    TopicSpec(
        "image/compressed",
        "subscription",
        "sensor_msgs/msg/CompressedImage",
        SENSOR_QOS,
        "JPEG/PNG images (`image_transport: compressed`).",
    ),
    TopicSpec(
        "camera_info",
        "subscription",
        "sensor_msgs/msg/CameraInfo",
        SENSOR_QOS,
        "Optional; paired with each image by stamp (exact, else nearest within `pairing_tolerance_s`).",
    ),
    TopicSpec(
        "sensor_depth",
        "subscription",
        "sensor_msgs/msg/Image",
        SENSOR_QOS,
        "Aligned depth of an RGB-D camera (16UC1 mm or 32FC1 m), `scale_source: depth` only; paired by stamp like "
        "camera_info. Another size of the image's aspect ratio is resized (nearest pixel); with `rectify: true` it "
        "is undistorted with the image's maps (nearest).",
    ),
    TopicSpec(
        "depth", "publisher", "sensor_msgs/msg/Image", STREAM_QOS, "32FC1 z-depth, NaN invalid, the image's header."
    ),
    TopicSpec(
        "depth/camera_info",
        "publisher",
        "sensor_msgs/msg/CameraInfo",
        STREAM_QOS,
        "Intrinsics of `depth`: the paired camera_info's K on the output grid, else the model's estimate.",
    ),
    TopicSpec(
        "confidence",
        "publisher",
        "sensor_msgs/msg/Image",
        STREAM_QOS,
        "32FC1 depth confidence, same header as `depth`.",
    ),
    TopicSpec(
        "points",
        "publisher",
        "sensor_msgs/msg/PointCloud2",
        STREAM_QOS,
        "Confidence-filtered x/y/z/rgb of the current frame, in `map_frame`, image time.",
    ),
    TopicSpec(
        "map",
        "publisher",
        "sensor_msgs/msg/PointCloud2",
        LATCHED_QOS,
        "Accumulated voxel map in `map_frame`, at most `map_rate_hz`.",
    ),
    TopicSpec(
        "pose",
        "publisher",
        "geometry_msgs/msg/PoseStamped",
        STREAM_QOS,
        "Camera optical frame pose in `map_frame`, image time.",
    ),
    TopicSpec(
        "path",
        "publisher",
        "nav_msgs/msg/Path",
        LATCHED_QOS,
        "The poses so far (`path_max_length`), in `map_frame`, at most `map_rate_hz`.",
    ),
    TopicSpec(
        "/tf",
        "publisher",
        "tf2_msgs/msg/TFMessage",
        "reliable, keep last 100, volatile",
        "`map_frame` -> camera frame (`tf_mode: publish`) or `map_frame` -> `odom_frame` (`tf_mode: map_to_odom`).",
    ),
    TopicSpec(
        "/diagnostics",
        "publisher",
        "diagnostic_msgs/msg/DiagnosticArray",
        "reliable, keep last 10, volatile",
        "Rates, latency, model time, drops, errors, unpaired images, predicted/camera focal ratio, scale.",
    ),
    TopicSpec(
        "~/reset",
        "service",
        "std_srvs/srv/Trigger",
        "services default",
        "Forget the reconstruction (map, path, trajectory).",
    ),
)


def default_values() -> dict[str, Any]:
    """Every parameter's default, by name."""
    return {p.name: p.default for p in PARAMETERS}


def declare_parameters(node: Node) -> dict[str, Any]:
    """Declare every parameter on `node` with its descriptor; returns the values (choices and ranges checked)."""
    values = {}
    for spec in PARAMETERS:
        values[spec.name] = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        spec.check(values[spec.name])
    check_combination(values)
    return values


def check_combination(values: dict[str, Any]) -> None:
    """Refuse parameter values that are valid alone but not together (InputError naming both)."""
    if values["scale_source"] == "odometry" and values["tf_mode"] == "publish":
        raise InputError(
            "parameters scale_source: odometry and tf_mode: publish: the camera frame would get a second TF "
            "parent (map_frame) besides the robot's odometry tree; use tf_mode: map_to_odom or none"
        )


def session_config(values: dict[str, Any]) -> SessionConfig:
    """The `SessionConfig` of a parameter dict; a value out of range is an InputError naming the parameter."""
    try:
        return SessionConfig(**{f.name: values[f.name] for f in fields(SessionConfig)})
    except SettingError as exc:
        raise InputError(f"parameter {exc.name}: expected {exc.expected}, got {exc.value!r}") from None


def scale_config(values: dict[str, Any]) -> ScaleConfig:
    """The `ScaleConfig` of a parameter dict (`scale_source`, `scale_<setting>`)."""
    settings = {f.name: values[f"scale_{f.name}"] for f in fields(ScaleConfig) if f.name != "source"}
    return ScaleConfig(source=values["scale_source"], **settings)


def runner_options(values: dict[str, Any]) -> RunnerOptions:
    """The `RunnerOptions` of a parameter dict: the same options `fin3r reconstruct` takes."""
    return RunnerOptions(
        input_max_side=values["input_max_side"], session=session_config(values), scale=scale_config(values)
    )


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")


def render_tables() -> str:
    """Markdown tables of the topics/services and of the parameters (the README section's body)."""
    lines = ["| name | kind | type | QoS | description |", "|---|---|---|---|---|"]
    lines += [f"| `{t.name}` | {t.kind} | `{t.msg_type}` | {t.qos} | {_cell(t.description)} |" for t in TOPICS]
    lines += ["", "| parameter | default | description |", "|---|---|---|"]
    for p in PARAMETERS:
        extra = f" One of: {', '.join(p.choices)}." if p.choices else ""
        default = str(p.default).lower() if isinstance(p.default, bool) else p.default
        shown = f"`{default!s}`" if default != "" else '`""`'
        lines.append(f"| `{p.name}` | {shown} | {_cell(p.description)}{extra} |")
    return "\n".join(lines) + "\n"


USAGE = """usage: reconstruct_node [-h] [--ros-args [-p NAME:=VALUE]... [--params-file FILE] [-r FROM:=TO]...]

Fin3R reconstruction node: camera images in; depth, confidence, clouds, map, pose, path, TF and
diagnostics out. Parameters are read once, at start-up (a params file: config/reconstruct.yaml).
Example: reconstruct_node --ros-args -p model:=vggt-tiny -p checkpoint:=none -r image:=/camera/image_raw
"""


def asks_for_help(argv: list[str]) -> bool:
    """True when `-h` / `--help` comes before `--ros-args` in `argv` (argv[0] is the program)."""
    own = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    return "-h" in own or "--help" in own


def help_text() -> str:
    """`reconstruct_node --help`: usage, then every parameter with its type, default and description."""
    defaults = [str(p.default).lower() if isinstance(p.default, bool) else repr(p.default) for p in PARAMETERS]
    name_width, default_width = max(len(p.name) for p in PARAMETERS), max(map(len, defaults))
    lines = [USAGE, "parameters (name, type, default, description):"]
    for p, default in zip(PARAMETERS, defaults, strict=True):
        extra = f" One of: {', '.join(p.choices)}." if p.choices else (f" Valid: {p.constraint}." if p.valid else "")
        lines.append(f"  {p.name:<{name_width}}  {p.type_name:<7}  {default:<{default_width}}  {p.description}{extra}")
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- topics-and-parameters: generated by `python -m fin3r_ros.parameters README.md` -->"
README_END = "<!-- end of topics-and-parameters -->"


def readme_with_tables(text: str) -> str:
    """`text` (the README) with the part between README_BEGIN and README_END replaced by `render_tables()`."""
    if README_BEGIN not in text or README_END not in text:
        raise InputError(f"expected the README to contain the markers {README_BEGIN!r} and {README_END!r}")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_BEGIN}\n{render_tables()}{README_END}{tail}"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    readme = Path(sys.argv[1])
    readme.write_text(readme_with_tables(readme.read_text()))
