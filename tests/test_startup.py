"""Start-up cost: a trigger-only run loads only what it uses, and the shortcuts stay faithful."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from northflank_build.inputs import (
    ACTION_COPY,
    action_copy_text,
    input_specs,
    load_action,
    load_action_copy,
)
from northflank_build.quick_schema import verdict
from northflank_build.request import SCHEMA_FILE
from tests.conftest import PROJECT, TOKEN, MakeEmulator
from tests.runner import github_env, run

SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
JSONSCHEMA = Draft202012Validator(SCHEMA)
SHA = "0123456789abcdef0123456789abcdef01234567"
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)
# Modules a trigger-only run has no use for.
NOT_FOR_A_TRIGGER = (
    "yaml",
    "jsonschema",
    "argparse",
    "northflank_build.emulator",
    "northflank_build.wait",
    "northflank_build.logs",
    "northflank_build.schedule",
)


def test_action_copy_is_written_from_action_yml() -> None:
    assert ACTION_COPY.read_text(encoding="utf-8") == action_copy_text(load_action()), (
        "run: python -m northflank_build.docs"
    )
    assert input_specs(load_action_copy()) == input_specs(load_action())


def _imports(stderr: str) -> set[str]:
    return set(IMPORTED.findall(stderr))


def _trigger(
    make_emulator: MakeEmulator, tmp_path: Path, **inputs: str
) -> tuple[int, str, set[str]]:
    emulator = make_emulator()
    given = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "api-url": emulator.url,
        "service-type": "build",
        "wait": "false",
        **inputs,
    }
    env = github_env(tmp_path, given, extra={"PYTHONPROFILEIMPORTTIME": "1"})
    result = run(env, tmp=tmp_path)
    return result.code, result.shown, _imports(result.stderr)


def test_a_trigger_only_run_imports_only_what_it_uses(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    code, shown, imported = _trigger(make_emulator, tmp_path)
    assert code == 0, shown
    assert "requests" in imported
    assert "northflank_build.cli" in imported
    assert sorted(imported & set(NOT_FOR_A_TRIGGER)) == []


def test_yaml_is_imported_when_an_input_is_yaml(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    code, shown, imported = _trigger(make_emulator, tmp_path, **{"build-arguments": "A: '1'"})
    assert code == 0, shown
    assert "yaml" in imported
    assert "jsonschema" not in imported


def test_jsonschema_explains_a_body_it_refuses(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    code, shown, imported = _trigger(make_emulator, tmp_path, **{"dockerfile-path": "Dockerfile"})
    assert code == 2
    assert "dockerfile-path" in shown
    assert "jsonschema" in imported


# -- the quick verdict agrees with jsonschema --------------------------------------------------

texts = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["main", "", " ", "a=b", "/app/.npmrc", "/", "/x/", "app", "utf-8", "base64"]),
    st.sampled_from([SHA, SHA.upper(), SHA[:39], SHA + "\n", "https://x.test/b.tgz", "ftp://x"]),
)
scalars = st.one_of(
    texts, st.integers(-3, 3), st.booleans(), st.none(), st.floats(allow_nan=False), st.just(1.0)
)
keys = st.one_of(
    texts,
    st.sampled_from(
        [
            "sha", "branch", "pullRequestId", "bundleUrl", "overrides", "buildArguments",
            "buildFiles", "dockerSecretMounts", "docker", "dockerFilePath", "dockerWorkDir",
            "dockerfileTarget", "data", "encoding",
        ]
    ),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


def mostly(valid: Any, wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The valid value three times in four, else something possibly wrong."""
    return st.one_of(st.just(valid), st.just(valid), st.just(valid), wrong)


secret_files = st.fixed_dictionaries(
    {"data": mostly("eA==", texts), "encoding": mostly("utf-8", texts)},
    optional={"x": scalars},
)
docker = st.fixed_dictionaries(
    {},
    optional={
        "dockerFilePath": mostly("/docker/app.Dockerfile", texts),
        "dockerWorkDir": mostly("/", texts),
        "dockerfileTarget": mostly("runtime", texts),
    },
)
overrides = st.fixed_dictionaries(
    {},
    optional={
        "buildArguments": st.dictionaries(mostly("A", texts), mostly("1", scalars), max_size=3),
        "buildFiles": st.dictionaries(mostly("/app/.npmrc", texts), secret_files, max_size=2),
        "dockerSecretMounts": st.dictionaries(mostly("token", texts), secret_files, max_size=2),
        "docker": mostly({}, scalars) | docker,
        "extra": scalars,
    },
)
# Shaped like the bodies a run sends, with any part sometimes wrong.
git_bodies = st.fixed_dictionaries(
    {},
    optional={
        "sha": mostly(SHA, st.one_of(texts, scalars)),
        "branch": mostly("main", st.one_of(texts, scalars)),
        "pullRequestId": mostly(7, st.one_of(st.integers(-1, 5), st.just(2.0), st.booleans())),
        "overrides": mostly({}, scalars) | overrides,
    },
)
bundle_bodies = st.fixed_dictionaries(
    {"bundleUrl": mostly("https://x.test/b.tgz", texts)},
    optional={"branch": mostly("main", texts), "sha": mostly(SHA, texts), "x": scalars},
)
near_valid = git_bodies | bundle_bodies


@given(st.one_of(near_valid, near_valid, near_valid, st.dictionaries(keys, values, max_size=5)))
def test_the_quick_verdict_never_contradicts_jsonschema(body: dict[str, Any]) -> None:
    quick = verdict(SCHEMA, body)
    assert quick is None or quick == JSONSCHEMA.is_valid(body)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"sha": SHA},
        {"sha": SHA, "branch": "feature/x"},
        {"sha": SHA, "pullRequestId": 42},
        {"bundleUrl": "https://x.test/b.tgz", "branch": "main"},
        {
            "branch": "main",
            "overrides": {
                "buildArguments": {"NODE_ENV": "production"},
                "buildFiles": {"/app/.npmrc": {"data": "eA==", "encoding": "utf-8"}},
                "dockerSecretMounts": {"token": {"data": "eA==", "encoding": "utf-8"}},
                "docker": {"dockerFilePath": "/Dockerfile", "dockerfileTarget": "run"},
            },
        },
    ],
)
def test_the_bodies_a_run_sends_need_no_jsonschema(body: dict[str, Any]) -> None:
    assert verdict(SCHEMA, body) is True


@pytest.mark.parametrize(
    "body",
    [
        {"sha": SHA, "branch": "main", "pullRequestId": 1},
        {"sha": "abc"},
        {"pullRequestId": 0},
        {"overrides": {"docker": {"dockerFilePath": "Dockerfile"}}},
        {"bundleUrl": "https://x.test/b.tgz", "pullRequestId": 3},
        {"unknown": 1},
    ],
)
def test_invalid_bodies_are_left_to_jsonschema(body: dict[str, Any]) -> None:
    assert verdict(SCHEMA, body) is not True
    assert not JSONSCHEMA.is_valid(body)


def test_an_unknown_keyword_leaves_the_verdict_to_jsonschema() -> None:
    assert verdict({"type": "string", "maxItems": 1}, "x") is None
    assert verdict({"$ref": "https://elsewhere.test/schema"}, "x") is None
