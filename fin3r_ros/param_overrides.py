"""Checking the parameters a user gave (params file, `-p name:=value`) before the node declares them.

rclpy reports a wrong type as a traceback (`InvalidParameterTypeException`) and ignores names the node
does not declare. `check_overrides` reads the overrides the way rclpy will apply them (a probe node on
the same context), and turns a wrong type into one `ParameterTypeError` line that names the parameter,
the type expected, the value given and the fix (`write 1.0`), and an unknown name into a warning that
names the closest declared one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

from rclpy.context import Context
from rclpy.node import Node

from fin3r_lib.errors import InputError
from fin3r_ros.parameters import PARAMETERS, TYPE_NAMES, ParamSpec, default_values, session_config


class ParameterTypeError(InputError):
    """A parameter override whose type is not the declared one."""


def given_overrides(context: Context, node_name: str) -> dict[str, Any]:
    """The parameter overrides `context`'s arguments give a node called `node_name`, minus rclpy's own."""
    probes = [
        Node(
            node_name,
            context=context,
            use_global_arguments=global_args,
            allow_undeclared_parameters=True,
            automatically_declare_parameters_from_overrides=True,
            start_parameter_services=False,
            enable_rosout=False,
        )
        for global_args in (True, False)
    ]
    try:
        given, builtin = ({k: p.value for k, p in n.get_parameters_by_prefix("").items()} for n in probes)
    finally:
        for probe in probes:
            probe.destroy_node()
    return {k: v for k, v in given.items() if k not in builtin or v != builtin[k]}


def type_fix(spec: ParamSpec, value: Any) -> str:
    """How to write `value` as `spec`'s type, e.g. `write 1.0` for an integer given to a double."""
    expected = type(spec.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return f"write {float(value)!r}"
    if expected is int and isinstance(value, float) and value.is_integer():
        return f"write {int(value)}"
    if expected is int:
        return f"write a whole number such as {spec.default}"
    if expected is bool:
        return "write true or false"
    if expected is str:
        return f'write "{value}" (quoted)'
    return f"write {_a(spec.type_name)} such as {spec.default!r}"


def _a(type_name: str) -> str:
    return f"an {type_name}" if type_name[0] in "aeiou" else f"a {type_name}"


def _kind(value: Any) -> str:
    """`an integer`, `a double`, ... for a given value (as ROS types it)."""
    if isinstance(value, (list, tuple)):
        return "an array"
    return _a(TYPE_NAMES.get(type(value), type(value).__name__))


def _shown(value: Any) -> str:
    """A value as the user wrote it in YAML."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def check_types(given: dict[str, Any], specs: Sequence[ParamSpec] = PARAMETERS) -> None:
    """Raise ParameterTypeError for the first given value whose type is not its parameter's."""
    for spec in specs:
        value = given.get(spec.name, spec.default)
        if type(value) is not type(spec.default):
            raise ParameterTypeError(
                f"parameter {spec.name}: expected {_a(spec.type_name)}, got {_shown(value)} ({_kind(value)}); "
                f"{type_fix(spec, value)}"
            )


def unknown_name_warnings(given: dict[str, Any], specs: Sequence[ParamSpec] = PARAMETERS) -> list[str]:
    """One warning per given name no parameter has, naming the closest declared one when there is one."""
    names = [s.name for s in specs]
    warnings = []
    for name in sorted(set(given) - set(names)):
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]}?" if close else " (reconstruct_node --help lists them)"
        warnings.append(f"parameter {name} is not a parameter of this node and is ignored{hint}")
    return warnings


def check_overrides(context: Context, node_name: str, warn: Callable[[str], Any]) -> None:
    """Check the overrides for `node_name`: `warn` each unknown name; raise on a wrong type, choice or range."""
    given = given_overrides(context, node_name)
    for warning in unknown_name_warnings(given):
        warn(warning)
    check_types(given)
    for spec in PARAMETERS:  # choices and node-only ranges
        spec.check(given.get(spec.name, spec.default))
    session_config({**default_values(), **given})  # out-of-range settings fail here, before a model loads
