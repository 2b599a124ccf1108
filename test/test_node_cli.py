"""The node's console entry point as a user runs it: --help, and params files with mistakes in them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fin3r_ros.parameters import PARAMETERS

# The installed console script's entry point, run in a child that reports which model modules got imported.
CHILD = """
import json, sys
from importlib.metadata import entry_points
(ep,) = entry_points(group="console_scripts", name="reconstruct_node")
try:
    rc = ep.load()()
finally:
    heavy = ("peft", "fin3r_lib.adapter", "fin3r_lib.models.vggt", "fin3r_lib.models.cut3r", "fin3r_lib.models.dust3r")
    print("IMPORTED " + json.dumps(sorted(m for m in sys.modules if m in heavy)), file=sys.stderr)
    print("TORCH " + json.dumps("torch" in sys.modules), file=sys.stderr)
sys.exit(rc)
"""


def run_node(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`reconstruct_node ARGS` through its console entry point, in a fresh process on a private ROS domain."""
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", "31"),
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def imported(done: subprocess.CompletedProcess) -> list[str]:
    line = next(x for x in done.stderr.splitlines() if x.startswith("IMPORTED "))
    return json.loads(line[len("IMPORTED ") :])


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_every_parameter_without_loading_a_model(flag):
    done = run_node(flag, "--ros-args", "-p", "model:=vggt-tiny")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("usage: reconstruct_node [-h] [--ros-args")
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines() if line.startswith("  ")}
    assert rows["model"] == ["string", "'vggt-1b'"]
    assert rows["qos_depth"] == ["integer", "5"]
    assert rows["voxel_size"][0] == "double"
    assert rows["reset_on_time_jump"][0] == "bool"
    assert set(rows) == {p.name for p in PARAMETERS}
    assert imported(done) == []  # no backbone, adapter or PEFT import: nothing was loaded
    assert "TORCH false" in done.stderr.splitlines()  # the console script answers before torch is imported
    assert "Traceback" not in done.stderr


def test_without_help_the_same_child_does_reach_the_model_factory():
    """Control for the test above: a start that gets to the model imports the model families."""
    done = run_node("--ros-args", "-p", "model:=vggt-7b", "-p", "device:=cpu")
    assert done.returncode == 1
    assert "unknown model 'vggt-7b'" in done.stderr
    assert "fin3r_lib.models.vggt" in imported(done)


def params_file(tmp_path, **values) -> str:
    """A params YAML as a user writes one (values given as YAML text, e.g. voxel_size="1")."""
    body = "".join(f"    {k}: {v}\n" for k, v in values.items())
    path = tmp_path / "params.yaml"
    path.write_text(f"/**:\n  ros__parameters:\n    device: cpu\n{body}")
    return str(path)


def log_lines(stderr: str, level: str) -> list[str]:
    """The messages of the node's log lines of `level` (`[ERROR] [stamp] [reconstruct_node]: message`)."""
    return [line.split("]: ", 1)[1] for line in stderr.splitlines() if line.startswith(f"[{level}]")]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"voxel_size": "1"}, "parameter voxel_size: expected a double, got 1 (an integer); write 1.0"),
        ({"qos_depth": "5.0"}, "parameter qos_depth: expected an integer, got 5.0 (a double); write 5"),
        ({"tf_mode": "0"}, 'parameter tf_mode: expected a string, got 0 (an integer); write "0" (quoted)'),
        (
            {"reset_on_time_jump": "'yes'"},
            "parameter reset_on_time_jump: expected a bool, got 'yes' (a string); write true or false",
        ),
        ({"voxel_size": "-1.0"}, "parameter voxel_size: expected a number > 0, got -1.0"),
        ({"align_trim": "1.0"}, "parameter align_trim: expected a number in [0, 1), got 1.0"),
        ({"qos_depth": "0"}, "parameter qos_depth: expected an integer >= 1, got 0"),
        ({"map_rate_hz": "0.0"}, "parameter map_rate_hz: expected a number > 0, got 0.0"),
        ({"input_max_side": "-1"}, "parameter input_max_side: expected an integer >= 0, got -1"),
    ],
)
def test_params_file_mistake_is_one_line_naming_parameter_and_fix(tmp_path, values, message):
    done = run_node("--ros-args", "--params-file", params_file(tmp_path, model="vggt-1b", **values))
    assert done.returncode == 1
    assert log_lines(done.stderr, "ERROR") == [message]
    assert "Traceback" not in done.stderr and "SessionConfig" not in done.stderr
    assert imported(done) == []  # refused before the (large) model is loaded


def test_undeclared_parameter_is_a_warning_naming_the_closest_one(tmp_path):
    done = run_node("--ros-args", "--params-file", params_file(tmp_path, model="vggt-7b", voxel_sise="0.05"))
    assert log_lines(done.stderr, "WARN") == [
        "parameter voxel_sise is not a parameter of this node and is ignored; did you mean voxel_size?"
    ]
    assert done.returncode == 1 and "unknown model 'vggt-7b'" in done.stderr  # the run went on to the model
