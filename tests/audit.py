"""The secrets audit: every run's stdout, stderr, outputs, outputs file and summary are searched
for the secrets the run was given (token, build files and secret mounts: raw, per line, base64).

tests.runner.run calls audit() on every Result, so every scenario, present and future, is covered.
The runner consumes ::add-mask:: lines (Azure's agent ##vso[task.setsecret]) and never shows
them, so they are the one place a secret may appear.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SECRET_INPUTS = ("api-token", "build-files", "docker-secret-mounts")
SHORTEST = 8  # shorter values ("true", "main") are too common to search for


@dataclass
class Tally:
    """How many runs and texts the audit searched in this test session, and what it found."""

    runs: int = 0
    texts: int = 0
    hits: int = 0


TALLY = Tally()


def given(name: str, env: Mapping[str, str], args: Sequence[str]) -> list[str]:
    """Every value given for an input, by flag or by any of its variables."""
    upper = name.upper()
    names = [f"INPUT_{upper}", f"INPUT_{upper.replace('-', '_')}"]
    names += ["NORTHFLANK_" + upper.replace("-", "_")]
    names += ["NF_API_TOKEN"] if name == "api-token" else []
    values = [env[n] for n in names if env.get(n, "").strip()]
    for index, arg in enumerate(args):
        if arg == f"--{name}" and index + 1 < len(args):
            values.append(args[index + 1])
        elif arg.startswith(f"--{name}="):
            values.append(arg.split("=", 1)[1])
    return values


def contents(text: str, workspace: Path) -> list[bytes]:
    """The contents a build-files or docker-secret-mounts value carries (files read)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return [text.encode()]
    if not isinstance(data, dict):
        return [text.encode()]
    found = []
    for value in data.values():
        if isinstance(value, str):
            found.append(value.encode("utf-8", "replace"))
        elif isinstance(value, dict) and isinstance(value.get("file"), str):
            path = workspace / value["file"]
            if path.is_file():
                found.append(path.read_bytes())
    return found


def secrets(env: Mapping[str, str], args: Sequence[str], cwd: Path) -> list[str]:
    """The secret strings of a run, each in every form it could be printed in."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or cwd)
    plain = [value.strip() for value in given("api-token", env, args)]
    for name in SECRET_INPUTS[1:]:
        for text in given(name, env, args):
            for content in contents(text, workspace):
                plain.append(base64.b64encode(content).decode())
                decoded = content.decode("utf-8", "replace")
                plain += [decoded.strip(), *(line.strip() for line in decoded.splitlines())]
    forms = set()
    for value in plain:
        if len(value) >= SHORTEST:
            forms |= {value, json.dumps(value)[1:-1], value.replace("%", "%25")}
            forms.add(value.replace("\\", "\\\\"))
    return sorted(forms)


def leaks(
    texts: Mapping[str, str], env: Mapping[str, str], args: Sequence[str], cwd: Path
) -> list[tuple[str, str]]:
    """(where, secret) for every secret of the run found in one of the texts."""
    found = secrets(env, args, cwd)
    return [(where, secret) for where, text in texts.items() for secret in found if secret in text]


def audit(texts: Mapping[str, str], env: Mapping[str, str], args: Sequence[str], cwd: Path) -> None:
    """Count the run, and raise AssertionError naming where a secret showed, if one did."""
    hits = leaks(texts, env, args, cwd)
    TALLY.runs += 1
    TALLY.texts += len(texts)
    TALLY.hits += len(hits)
    assert not hits, f"secrets leaked: {hits}"


def run_texts(result: Any, env: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """What a run left for people to read: output lines, outputs, outputs file and summary."""
    texts = {
        "stdout and stderr": result.shown,
        "GITHUB_OUTPUT": result.outputs_text,
        "summary": result.summary,
    }
    for name in given("outputs-file", env, ()):
        path = cwd / name.strip()
        if path.is_file():
            texts["outputs-file"] = path.read_text(encoding="utf-8", errors="replace")
    return texts
