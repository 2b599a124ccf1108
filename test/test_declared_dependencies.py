"""Every third-party import of fin3r_lib and fin3r_ros is declared: pip ones in setup.py, ROS ones in package.xml.

The imports are found by parsing the code (ast, nothing imported), each classified by how it runs:
- `required`: at module level, outside any guard: the distribution must be in `install_requires`, or in
  the extra that owns the subpackage (`EXTRA_OF`: `fin3r_lib/evaluation` needs `.[eval]`);
- `lazy`: inside a function, outside any guard: in `install_requires` or, for code that an extra owns,
  in that extra, else in any extra (the feature that calls it says which);
- `guarded`: inside a `try` that catches ImportError, or of a module the same file probes with
  `importlib.util.find_spec`: allowed undeclared (the code has a fallback or a clear error).
Module names go to distributions through the installed packages' metadata
(`importlib.metadata.packages_distributions`: `cv2` -> opencv-python-headless, `PIL` -> pillow), not a table
of ours. A module is a ROS package when package.xml names it or the environment holds its
`share/NAME/package.xml` (where ROS wheels and ROS installs put it); those must be `exec_depend`s.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("fin3r_lib", "fin3r_ros")
# Subpackages (or modules) whose code runs only with an extra installed, and that extra.
EXTRA_OF = {"fin3r_lib/evaluation": "eval"}
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


@dataclass(frozen=True)
class Import:
    """A third-party top-level module imported by a file, with how it runs (required / lazy / guarded)."""

    module: str
    where: str  # path:line
    kind: str


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    return any(isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS for n in ast.walk(handler.type))


def _probed_modules(tree: ast.Module) -> set[str]:
    """Modules named in `find_spec("name")` calls of the file (optional imports checked before use)."""
    probed = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "find_spec"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            probed.add(node.args[0].value.split(".")[0])
    return probed


def file_imports(path: Path, root: Path) -> list[Import]:
    """The third-party imports of one file (standard library and this repository's packages left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    probed = _probed_modules(tree)
    rel = path.relative_to(root).as_posix()
    found: list[Import] = []

    def add(node: ast.Import | ast.ImportFrom, in_function: bool, guarded: bool) -> None:
        if isinstance(node, ast.ImportFrom) and (node.level or not node.module):
            return
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in PACKAGES or top == "__future__":
                continue
            kind = "guarded" if guarded or top in probed else "lazy" if in_function else "required"
            found.append(Import(top, f"{rel}:{node.lineno}", kind))

    def visit(node: ast.AST, in_function: bool, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                add(child, in_function, guarded)
            elif isinstance(child, ast.Try) and any(_catches_import_error(h) for h in child.handlers):
                visit(ast.Module(body=child.body, type_ignores=[]), in_function, True)
                visit(ast.Module(body=[*child.orelse, *child.finalbody], type_ignores=[]), in_function, guarded)
                for handler in child.handlers:
                    visit(handler, in_function, guarded)
            else:
                is_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                visit(child, in_function or is_function, guarded)

    visit(tree, False, False)
    return found


def code_imports(root: Path = REPO) -> list[Import]:
    """The third-party imports of every file of fin3r_lib and fin3r_ros under `root`."""
    return [imp for pkg in PACKAGES for path in sorted((root / pkg).rglob("*.py")) for imp in file_imports(path, root)]


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    return normalized(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec).group(1))


def setup_requirements(setup_py: Path = REPO / "setup.py") -> tuple[set[str], dict[str, set[str]]]:
    """`install_requires` and `extras_require` of setup.py's `setup()` call, as normalized names."""
    for node in ast.walk(ast.parse(setup_py.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            kwargs = {k.arg: k.value for k in node.keywords}
            required = {_requirement_name(s) for s in ast.literal_eval(kwargs["install_requires"])}
            extras = ast.literal_eval(kwargs.get("extras_require", ast.Dict(keys=[], values=[])))
            return required, {name: {_requirement_name(s) for s in specs} for name, specs in extras.items()}
    raise AssertionError(f"no setup() call in {setup_py}")


def package_xml_depends(package_xml: Path = REPO / "package.xml") -> set[str]:
    """Run-time dependencies of package.xml (`depend` and `exec_depend`)."""
    root = ET.parse(package_xml).getroot()
    return {e.text.strip() for tag in ("depend", "exec_depend") for e in root.findall(tag)}


def installed_ros_packages() -> set[str]:
    """Names of the ROS packages of this environment: `share/NAME/package.xml` under its prefixes."""
    prefixes = {sys.prefix, *filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))}
    return {p.parent.name for prefix in prefixes for p in Path(prefix).glob("share/*/package.xml")}


def _extra_owning(where: str) -> str | None:
    path = where.rsplit(":", 1)[0]
    return next((extra for area, extra in EXTRA_OF.items() if path == area or path.startswith(area + "/")), None)


def undeclared(
    imports: list[Import],
    required: set[str],
    extras: dict[str, set[str]],
    ros_depends: set[str],
    ros_packages: set[str],
    distributions: dict[str, list[str]],
) -> list[str]:
    """One line per import that the declarations do not cover, saying where it is and what is missing."""
    missing = []
    every_extra = set().union(*extras.values()) if extras else set()
    for imp in imports:
        if imp.kind == "guarded":
            continue
        if imp.module in ros_depends or imp.module in ros_packages:
            if imp.module not in ros_depends:
                missing.append(f"{imp.where}: {imp.module} (ROS package, {imp.kind}) is no exec_depend of package.xml")
            continue
        dists = {normalized(d) for d in distributions.get(imp.module, [imp.module])}
        owner = _extra_owning(imp.where)
        allowed = required | extras.get(owner, set()) if owner else required
        if imp.kind == "lazy" and not owner:
            allowed = required | every_extra
        if not dists & allowed:
            where = f"install_requires or extras[{owner!r}]" if owner else "install_requires"
            where = "install_requires or an extra" if imp.kind == "lazy" and not owner else where
            missing.append(f"{imp.where}: {imp.module} ({imp.kind}; distribution {sorted(dists)}) is not in {where}")
    return missing


def _check(imports: list[Import], required: set[str] | None = None) -> list[str]:
    declared, extras = setup_requirements()
    return undeclared(
        imports,
        declared if required is None else required,
        extras,
        package_xml_depends(),
        installed_ros_packages(),
        packages_distributions(),
    )


def test_every_third_party_import_is_declared():
    imports = code_imports()
    assert {"numpy", "torch", "rclpy"} <= {i.module for i in imports}  # the scan sees the code
    assert not _check(imports), "\n".join(_check(imports))


def test_the_check_catches_an_undeclared_import(tmp_path):
    lib = tmp_path / "fin3r_lib"
    (lib / "evaluation").mkdir(parents=True)
    (lib / "grab.py").write_text(
        "import requests\n"
        "from PIL import Image\n"
        "try:\n    import ujson\nexcept ImportError:\n    ujson = None\n"
        "def later():\n    import open3d\n    import leftpad\n"
        "if importlib.util.find_spec('rich'):\n    import rich\n"
    )
    (lib / "evaluation" / "fit.py").write_text("import scipy\nimport shapely\n")
    ros = tmp_path / "fin3r_ros"
    ros.mkdir()
    (ros / "node.py").write_text("import rclpy\nfrom lifecycle_msgs.msg import State\n")
    imports = code_imports(tmp_path)
    kinds = {(i.module, i.kind) for i in imports}
    assert {("requests", "required"), ("ujson", "guarded"), ("open3d", "lazy"), ("rich", "guarded")} <= kinds
    missing = undeclared(
        imports,
        {"pillow", "numpy"},
        {"eval": {"scipy"}, "train": {"open3d-cpu"}},
        {"rclpy"},
        {"rclpy", "lifecycle_msgs"},
        {"PIL": ["pillow"], "open3d": ["open3d-cpu"], "scipy": ["scipy"]},
    )
    flagged = sorted(line.split(" ", 2)[1] for line in missing)
    assert flagged == ["leftpad", "lifecycle_msgs", "requests", "shapely"], missing
    # and the real code, with one real requirement taken out of setup.py, is caught
    declared, _ = setup_requirements()
    assert any(" PIL " in line for line in _check(code_imports(), declared - {"pillow"}))
