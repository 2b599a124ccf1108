"""The entry point fails cleanly on a bad model; a running node declares the library defaults (YAML, README)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import torch
import yaml
from ros_harness import RosHarness

from fin3r_lib.models import build_model
from fin3r_lib.session import SessionConfig
from fin3r_ros.parameters import PARAMETERS, readme_with_tables
from fin3r_ros.reconstruct_node import ReconstructNode, main

REPO = Path(__file__).resolve().parents[1]


def _node_values(cli_args: list[str] | None = None) -> dict[str, object]:
    """Every declared parameter's value in a running reconstruct_node (tiny random model)."""
    torch.manual_seed(0)
    with RosHarness() as ros:
        node = ReconstructNode(build_model("vggt-tiny"), context=ros.context, cli_args=cli_args)
        ros.nodes.append(node)
        return {p.name: node.get_parameter(p.name).value for p in PARAMETERS}


def _exact(values: dict[str, object]) -> dict[str, tuple[type, object]]:
    return {name: (type(value), value) for name, value in values.items()}  # 1 == 1.0: the types must match too


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model:=vggt-tiny", "checkpoint:=/nonexistent/tiny.safetensors"], "/nonexistent/tiny.safetensors"),
        (["model:=vggt-7b"], "unknown model 'vggt-7b'"),
        (["model:=vggt-tiny", "checkpoint:=none", "tf_mode:=sometimes"], "expected one of ('publish', 'map_to_odom',"),
    ],
)
def test_main_exits_non_zero_with_one_clear_error(capfd, overrides, message) -> None:
    args = ["reconstruct_node", "--ros-args", "-p", "device:=cpu"]
    for override in overrides:
        args += ["-p", override]
    assert main(args) == 1
    err = capfd.readouterr().err
    assert message in err
    assert "Traceback" not in err and err.count("[ERROR]") == 1


def test_every_session_setting_is_a_parameter_with_the_library_default() -> None:
    names = {p.name for p in PARAMETERS}
    assert len(names) == len(PARAMETERS), "a parameter is declared twice"
    declared, defaults = _node_values(), SessionConfig()
    for f in fields(SessionConfig):
        assert (type(declared[f.name]), declared[f.name]) == (
            type(getattr(defaults, f.name)),
            getattr(defaults, f.name),
        )


def test_shipped_yaml_holds_what_a_node_declares_without_it() -> None:
    doc = yaml.safe_load((REPO / "config" / "reconstruct.yaml").read_text())
    assert _exact(doc["/**"]["ros__parameters"]) == _exact(_node_values())


def test_a_node_started_with_a_params_file_takes_its_values(tmp_path) -> None:
    doc = yaml.safe_load((REPO / "config" / "reconstruct.yaml").read_text())
    changed = {
        "qos_depth": 7,
        "map_rate_hz": 2.5,
        "map_frame": "world",
        "tf_wait_s": 0.5,
        "reset_on_time_jump": False,
        "context_size": 4,
        "keyframe_min_flow_px": 20.0,
    }
    doc["/**"]["ros__parameters"].update(changed)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(doc))
    values = _node_values(["--ros-args", "--params-file", str(params)])
    assert {name: values[name] for name in changed} == changed
    unchanged = {name: value for name, value in _node_values().items() if name not in changed}
    assert _exact({name: values[name] for name in unchanged}) == _exact(unchanged)


def test_node_declares_parameters_with_descriptors() -> None:
    torch.manual_seed(0)
    with RosHarness() as ros:
        node = ReconstructNode(build_model("vggt-tiny"), context=ros.context)
        ros.nodes.append(node)
        names = [p.name for p in PARAMETERS]
        for spec, descriptor in zip(PARAMETERS, node.describe_parameters(names), strict=True):
            assert descriptor.description == spec.description and descriptor.read_only
        assert node.get_parameter("tf_mode").value == "publish"


def test_readme_table_is_generated_from_the_code() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme_with_tables(readme) == readme, "README tables are stale: run python -m fin3r_ros.parameters README.md"
