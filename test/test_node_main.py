"""The console entry point fails cleanly on a bad model; parameters are declared, documented and in the YAML."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import torch
import yaml
from ros_harness import RosHarness

from fin3r_lib.models import build_model
from fin3r_lib.session import SessionConfig
from fin3r_ros.parameters import PARAMETERS, default_values, readme_with_tables
from fin3r_ros.reconstruct_node import ReconstructNode, main

REPO = Path(__file__).resolve().parents[1]


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
    defaults = SessionConfig()
    for f in fields(SessionConfig):
        assert default_values()[f.name] == getattr(defaults, f.name)


def test_yaml_holds_every_parameter_with_its_default() -> None:
    doc = yaml.safe_load((REPO / "config" / "reconstruct.yaml").read_text())
    assert doc["/**"]["ros__parameters"] == default_values()


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
