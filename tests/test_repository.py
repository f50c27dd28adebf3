"""Checks of the repository's own configuration: workflows, action.yml, Dockerfile and lock."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = ROOT / ".github" / "workflows"
EXAMPLE_DIR = ROOT / "examples"
FULL_COMMIT = re.compile(r"[0-9a-f]{40}")
# jsonschema is the tests' oracle for request bodies, not a dependency of the program.
RUNTIME_DEPENDENCIES = {"requests", "pyyaml"}
# The runner hands these `with:` keys of a Docker action to `docker run`, not to the program.
DOCKER_STEP_KEYS = {"args", "entrypoint"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def yaml_files(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for suffix in ("yml", "yaml") for p in folder.glob(f"{pattern}.{suffix}"))


def workflow_files() -> list[Path]:
    return yaml_files(WORKFLOW_DIR, "*")


def action() -> dict[str, Any]:
    data = load_yaml(ROOT / "action.yml")
    assert isinstance(data, dict)
    return data


def mappings(node: object) -> Iterator[dict[Any, Any]]:
    """Yield every mapping in a parsed YAML document, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from mappings(value)
    elif isinstance(node, list):
        for item in node:
            yield from mappings(item)


def is_this_action(uses: object) -> bool:
    return isinstance(uses, str) and uses.strip().rstrip("/") in {".", ""}


def undeclared_inputs(document: object, declared: Iterable[str]) -> list[str]:
    """Return the `with:` keys of `uses: ./` steps that action.yml does not declare.

    Input names are matched without regard to case, as the runner does.
    """
    known = {name.lower() for name in declared} | DOCKER_STEP_KEYS
    return [
        str(key)
        for step in mappings(document)
        if is_this_action(step.get("uses"))
        for key in (step.get("with") or {})
        if str(key).lower() not in known
    ]


def self_steps(document: object) -> list[dict[Any, Any]]:
    return [step for step in mappings(document) if is_this_action(step.get("uses"))]


SYNTHETIC_WORKFLOW = """\
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: ./
        with:
          api-token: ${{ secrets.NORTHFLANK_API_TOKEN }}
          project-id: my-project
          service-id: my-service
          wait: "false"
"""


def test_self_steps_pass_only_declared_inputs(tmp_path: Path) -> None:
    synthetic = tmp_path / "self-test.yml"
    synthetic.write_text(SYNTHETIC_WORKFLOW, encoding="utf-8")
    files = [*workflow_files(), *yaml_files(EXAMPLE_DIR, "**/*"), synthetic]
    declared = action()["inputs"]

    steps = 0
    problems = []
    for path in files:
        document = load_yaml(path)
        steps += len(self_steps(document))
        problems += [f"{path.name}: {key}" for key in undeclared_inputs(document, declared)]

    assert steps >= 1, "no `uses: ./` step was found, not even in the synthetic workflow"
    assert problems == [], f"`with:` keys that action.yml does not declare: {problems}"


def test_undeclared_input_is_caught() -> None:
    document = yaml.safe_load(SYNTHETIC_WORKFLOW.replace("wait:", "wiat:"))
    assert undeclared_inputs(document, action()["inputs"]) == ["wiat"]


def is_pinned(uses: str) -> bool:
    """Whether a `uses:` reference names an immutable revision (local actions need none)."""
    if uses.startswith("./"):
        return True
    if uses.startswith("docker://"):
        return "@sha256:" in uses
    _, _, ref = uses.partition("@")
    return FULL_COMMIT.fullmatch(ref) is not None


@pytest.mark.parametrize(
    ("uses", "pinned"),
    [
        ("actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8", True),
        ("actions/checkout@v5", False),
        ("actions/checkout@08c6903", False),
        ("actions/checkout", False),
        ("docker://alpine:3.20", False),
        ("./", True),
    ],
)
def test_pin_rule(uses: str, pinned: bool) -> None:
    assert is_pinned(uses) is pinned


def test_workflows_exist() -> None:
    assert workflow_files(), "no workflow under .github/workflows"


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_third_party_actions_pinned_to_commit(path: Path) -> None:
    uses = [m["uses"] for m in mappings(load_yaml(path)) if isinstance(m.get("uses"), str)]
    assert [u for u in uses if not is_pinned(u)] == []


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_workflow_permissions_and_timeouts(path: Path) -> None:
    workflow = load_yaml(path)
    assert "permissions" in workflow, "no top-level permissions"
    # A job that calls a reusable workflow cannot set a timeout; the called jobs carry their own.
    untimed = [
        name
        for name, job in workflow["jobs"].items()
        if "uses" not in job and "timeout-minutes" not in job
    ]
    assert untimed == [], f"jobs without timeout-minutes: {untimed}"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    instructions = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            keyword, _, arguments = pending.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def base_images() -> list[str]:
    """The images the stages start from, leaving out earlier stages named with AS."""
    images, stages = [], set()
    for keyword, args in dockerfile_instructions():
        if keyword == "FROM":
            words = args.split()
            if words[0] not in stages:
                images.append(words[0])
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
    return images


def test_dockerfile_entrypoint_is_exec_form() -> None:
    entrypoints = [args for keyword, args in dockerfile_instructions() if keyword == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    try:
        command = json.loads(entrypoints[-1])
    except json.JSONDecodeError:
        pytest.fail(f"shell-form ENTRYPOINT {entrypoints[-1]!r}: signals would not reach Python")
    assert isinstance(command, list)
    assert all(isinstance(part, str) for part in command)


def test_dockerfile_runs_as_root_in_the_workspace() -> None:
    keywords = {keyword for keyword, _ in dockerfile_instructions()}
    assert "USER" not in keywords, "GitHub runs container actions as root"
    assert "WORKDIR" not in keywords, "GitHub mounts the workspace as the working directory"


def test_dockerfile_base_image_has_fixed_version() -> None:
    images = base_images()
    assert images, "no FROM"
    for image in images:
        tag = image.partition("@")[0].partition(":")[2]
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{image}: tag without a full version"


def test_image_python_matches_lock() -> None:
    header = re.search(
        r"autogenerated by pip-compile with Python (\d+\.\d+)",
        (ROOT / "requirements.lock").read_text(encoding="utf-8"),
    )
    assert header, "requirements.lock does not say which Python it was compiled for"
    image = base_images()[-1]
    assert image.startswith(f"python:{header[1]}."), f"{image} is not Python {header[1]}"


def test_action_inputs_and_outputs_are_documented() -> None:
    spec = action()
    problems = []
    for name, data in spec["inputs"].items():
        if not isinstance(data.get("description"), str) or not data["description"].strip():
            problems.append(f"input {name}: no description")
        if not isinstance(data.get("default"), str):
            problems.append(f"input {name}: default missing or not a string")
    for name, data in spec.get("outputs", {}).items():
        if not isinstance(data.get("description"), str) or not data["description"].strip():
            problems.append(f"output {name}: no description")
    assert problems == []


def locked_packages() -> dict[str, tuple[str, list[str]]]:
    """Map each package in requirements.lock to its pinned version and its hashes."""
    packages: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        pin = re.match(r"([A-Za-z0-9._-]+)==([^\s\\;]+)", line)
        if pin:
            current = canonicalize_name(pin[1])
            packages[current] = (pin[2], [])
        elif current and line.strip().startswith("--hash="):
            packages[current][1].append(line.strip().removeprefix("--hash=").rstrip(" \\"))
        elif line.strip() and not line.lstrip().startswith("#"):
            pytest.fail(f"requirements.lock: unexpected line {line!r}")
    return packages


def project_dependencies() -> list[Requirement]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return [Requirement(spec) for spec in tomllib.load(file)["project"]["dependencies"]]


def dependency_closure(roots: Iterable[Requirement]) -> set[str]:
    """Names of the roots and everything they need here, read from the installed metadata."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for spec in metadata.requires(name) or []:
            needed = Requirement(spec)
            extras = requirement.extras or {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                todo.append(needed)
    return seen


def test_runtime_dependencies_are_exactly_these() -> None:
    names = {canonicalize_name(r.name) for r in project_dependencies()}
    assert names == RUNTIME_DEPENDENCIES


def test_lock_pins_runtime_closure_with_hashes() -> None:
    locked = locked_packages()
    assert set(locked) == dependency_closure(project_dependencies())
    for requirement in project_dependencies():
        version, _ = locked[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version), f"{requirement.name}=={version}"
    unhashed = [name for name, (_, hashes) in locked.items() if not hashes]
    assert unhashed == []
    assert all(h.startswith("sha256:") for _, hashes in locked.values() for h in hashes)
