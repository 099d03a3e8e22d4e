"""Reading the deployment files, and the SENSEI_* settings the code really reads."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from shared.config import DEFAULT_PORTS

REPO = Path(__file__).resolve().parent.parent.parent
K8S = REPO / "deploy" / "k8s"
SETTING_NAME = re.compile(r"\bSENSEI_[A-Z0-9_]*[A-Z0-9]\b(?!=)")
INTERPOLATED = re.compile(r"\$\{(SENSEI_[A-Z0-9_]+)")


def version() -> str:
    """The project version of pyproject.toml (the image tag)."""
    with (REPO / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def image() -> str:
    """The one image every container runs."""
    return f"sensei:{version()}"


def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed (YAML merge keys resolved)."""
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def k8s_files() -> list[Path]:
    """Every Kubernetes manifest (not the kustomization)."""
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def k8s_objects() -> list[dict[str, Any]]:
    """Every object of every manifest."""
    return [doc for path in k8s_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    """The one object of `kind` named `name`."""
    found = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def settings_read_by_code() -> set[str]:
    """SENSEI_* names in shared/ and services/: literals, `setting("X")`, config.py's `get`."""
    names: set[str] = set()
    for path in sorted([*(REPO / "shared").rglob("*.py"), *(REPO / "services").rglob("*.py")]):
        parts = path.relative_to(REPO).parts
        owners = [parts[1]] if parts[0] == "services" and parts[1] in DEFAULT_PORTS else []
        services = owners or list(DEFAULT_PORTS)
        tree = ast.parse(path.read_text(), str(path))
        helpers = _setting_helpers(tree)
        # Docstrings and printed `KEY=value` lines name settings without reading them.
        docstrings = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }
        for node in ast.walk(tree):
            if id(node) in docstrings:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.update(SETTING_NAME.findall(node.value))
            elif isinstance(node, ast.Call) and node.args:
                names.update(_names_of_call(node, path, services))
                called = getattr(node.func, "id", None)
                if called in helpers and len(node.args) > helpers[called]:
                    arg = node.args[helpers[called]]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        names.update(f"SENSEI_{s.upper()}_{arg.value}" for s in services)
    return names


def _setting_helpers(tree: ast.Module) -> dict[str, int]:
    """Functions that pass one of their parameters to `.setting(...)`: name → its position."""
    helpers: dict[str, int] = {}
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        params = [a.arg for a in function.args.args]
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "setting"
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in params
            ):
                helpers[function.name] = params.index(node.args[0].id)
    return helpers


def _names_of_call(node: ast.Call, path: Path, services: list[str]) -> Iterator[str]:
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    arg = node.args[0]
    if called == "setting" and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        yield from (f"SENSEI_{service.upper()}_{arg.value}" for service in services)
    elif called == "get" and path.name == "config.py" and path.parent.name == "shared":
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            yield f"SENSEI_{arg.value}"
        elif (
            isinstance(arg, ast.JoinedStr)
            and len(arg.values) == 2
            and isinstance(arg.values[0], ast.FormattedValue)
            and isinstance(arg.values[1], ast.Constant)
        ):
            # get(f"{upper}_PORT"): one setting per service.
            suffix = str(arg.values[1].value)
            yield from (f"SENSEI_{service.upper()}{suffix}" for service in DEFAULT_PORTS)


def interpolated_settings(text: str) -> set[str]:
    """SENSEI_* names used as `${SENSEI_X...}` in a compose file."""
    return set(INTERPOLATED.findall(text))


def dockerfile() -> str:
    """The Dockerfile with line continuations joined."""
    return re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())


def dockerfile_env() -> dict[str, str]:
    """Every `ENV KEY=value` of the Dockerfile (all stages)."""
    env: dict[str, str] = {}
    for line in dockerfile().splitlines():
        if line.startswith("ENV "):
            for key, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line):
                env[key] = value
    return env


def seconds(value: str | int | float) -> float:
    """A compose duration (`20s`, `1m30s`) or a number, in seconds."""
    if isinstance(value, int | float):
        return float(value)
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total
