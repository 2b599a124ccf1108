"""The package layout the ROS 2 build and the library boundary rely on."""

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROS_MODULES = {"rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "nav_msgs", "std_srvs", "tf2_ros", "tf2_msgs"}
ROS_MODULES |= {"cv_bridge", "sensor_msgs_py", "diagnostic_msgs", "builtin_interfaces", "launch", "launch_ros"}


def test_fin3r_lib_never_imports_ros():
    offenders = []
    for path in (REPO / "fin3r_lib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in ROS_MODULES]
    assert not offenders, offenders


def test_package_xml_is_format_3_with_the_run_dependencies():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "fin3r_ros"
    deps = {e.text for e in root.findall("exec_depend")}
    required = {"rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "nav_msgs", "std_srvs", "tf2_ros", "tf2_msgs"}
    required |= {"cv_bridge", "sensor_msgs_py", "diagnostic_msgs", "launch", "launch_ros"}
    required |= {"python3-numpy", "python3-opencv", "python3-yaml", "python3-transforms3d"}
    assert required <= deps, required - deps
    assert root.find("export/build_type").text == "ament_python"


def test_ament_layout_files_exist():
    assert (REPO / "resource" / "fin3r_ros").is_file()
    for folder in ("fin3r_ros", "fin3r_lib", "launch", "config", "training", "test"):
        assert (REPO / folder).is_dir(), folder
    cfg = (REPO / "setup.cfg").read_text()
    assert "lib/fin3r_ros" in cfg  # ros2 run finds executables there


def test_console_scripts_import():
    from importlib.metadata import entry_points

    from fin3r_lib.cli.main import build_parser

    setup_src = (REPO / "setup.py").read_text()
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts") if ep.value.startswith("fin3r_")}
    assert set(scripts) == {"reconstruct_node", "reconstruct_lifecycle_node", "fin3r"}
    for ep in scripts.values():
        assert f'"{ep.name} = {ep.value}"' in setup_src, f"{ep.name}: installed entry point differs from setup.py"
        assert callable(ep.load()), ep.value
    assert build_parser().prog == "fin3r"
