"""The request body's one validator, and what a run loads.

The per-input checks of settings.py are the program's only validator; the API's JSON Schema
(northflank_build/schemas/start-build.json) is the oracle the tests hold every body against: any
inputs the checks accept, in any CI context and for any service, make a body the schema accepts,
and each pattern the schema shares with an input accepts exactly what that input accepts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from northflank_build.context import CiContext
from northflank_build.errors import InputError, InputErrors
from northflank_build.inputs import Given, Inputs, input_specs, load_action
from northflank_build.model import Service
from northflank_build.request import build_body
from northflank_build.settings import (
    DOCKER_WORK_DIR,
    DOCKERFILE_PATH,
    DOCKERFILE_TARGET,
    parse_pattern,
    parse_settings,
)
from tests.conftest import PROJECT, TOKEN, MakeEmulator
from tests.runner import github_env, run_process

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "northflank_build/schemas/start-build.json"
SCHEMA = Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
SHA = "0123456789abcdef0123456789abcdef01234567"
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)
DEFAULTS = {spec.name: spec.default for spec in input_specs(load_action())}


def test_a_run_never_loads_jsonschema_or_the_emulator(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emulator = make_emulator()
    given = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "api-url": emulator.url,
        "service-type": "build",
        "wait": "false",
        "build-arguments": "A: '1'",
        "dockerfile-path": "/Dockerfile",
    }
    env = github_env(tmp_path, given, extra={"PYTHONPROFILEIMPORTTIME": "1"})
    result = run_process(env, tmp=tmp_path)
    assert result.code == 0, result.shown
    imported = set(IMPORTED.findall(result.stderr))
    assert "northflank_build.cli" in imported
    assert {"jsonschema", "northflank_build.emulator"} & imported == set()


# -- the schema as the oracle of every body the program builds ---------------------------------


def mostly(valid: st.SearchStrategy[str], wrong: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A valid value nine times in ten, else one that may be wrong."""
    return st.integers(0, 9).flatmap(lambda n: wrong if n == 0 else valid)


text = st.text(max_size=12)
tricky = st.sampled_from(
    ["", " ", "main", "feature/x", "a b", "a:b", "/", "/x/", "/Dockerfile", "app", "run", "x" * 300]
)
wrong = text | tricky
valid_mappings = st.sampled_from(
    ["A: '1'", "A=1\nB=two words", "{}", '{"A": 1.5, "B": true}', "'1': x"]
)
wrong_mappings = st.sampled_from(
    ["", "'': x", "A B: 1", "A: [1]", "/app/: x", "app/.npmrc: x", "bad id: x", "/a: {file: no}"]
)
inputs_given = st.fixed_dictionaries(
    {},
    optional={
        "sha": mostly(st.sampled_from([SHA, SHA.upper()]), wrong),
        "branch": mostly(st.sampled_from(["main", "feature/x", "x" * 255]), wrong),
        "pull-request-id": mostly(st.sampled_from(["7", "#7"]), wrong),
        "bundle-url": st.sampled_from(["https://x.test/b.tgz", "ftp://x", ""]),
        "service-type": st.sampled_from(["auto", "build", "combined", "other"]),
        "build-arguments": mostly(valid_mappings, wrong_mappings),
        "build-files": mostly(st.sampled_from(["/app/.npmrc: token", "/a/b/c: x"]), wrong_mappings),
        "docker-secret-mounts": mostly(st.sampled_from(["token: s", "a.b_c-d: s"]), wrong_mappings),
        "dockerfile-path": mostly(st.sampled_from(["/Dockerfile", "/d/app.Dockerfile"]), wrong),
        "docker-work-dir": mostly(st.sampled_from(["/", "/services/api"]), wrong),
        "dockerfile-target": mostly(st.sampled_from(["run", "build-2"]), wrong),
    },
)
contexts = st.builds(
    CiContext,
    system=st.sampled_from(["github", "gitlab", "none"]),
    sha=st.sampled_from([None, SHA]),
    branch=st.sampled_from([None, "main", "feature/x"]) | wrong,
    pull_request_id=st.sampled_from([None, 3]),
    is_pull_request=st.booleans(),
)
services = st.none() | st.builds(
    Service,
    service_type=st.sampled_from(["build", "combined", "deployment", "unknown"]),
    build_source=st.sampled_from(["git", "bundle", ""]),
)


@settings(max_examples=400, deadline=None)
@given(inputs_given, contexts, services)
def test_every_body_the_checks_accept_is_one_the_api_schema_accepts(
    given: dict[str, str], ci: CiContext, service: Service | None
) -> None:
    values = {"api-token": TOKEN, "project-id": PROJECT, "service-id": "api", **given}
    inputs = Inputs({k: Given(v, f"--{k}") for k, v in values.items() if v.strip()}, DEFAULTS)
    try:
        request = build_body(parse_settings(inputs, {}), "api", ci, service, lambda text: None)
    except (InputError, InputErrors):
        return
    errors = [error.message for error in SCHEMA.iter_errors(request.body)]
    assert errors == [], (request.body, errors)


@pytest.mark.parametrize(
    ("pattern", "pointer"),
    [
        (DOCKERFILE_PATH, "dockerFilePath"),
        (DOCKER_WORK_DIR, "dockerWorkDir"),
        (DOCKERFILE_TARGET, "dockerfileTarget"),
    ],
)
@settings(max_examples=200, deadline=None)
@given(value=st.text(alphabet="/ab._-: \n1", max_size=8))
def test_each_docker_input_accepts_what_the_schema_accepts(
    pattern: re.Pattern[str], pointer: str, value: str
) -> None:
    # Inputs are read without surrounding white space, so the schema judges the stripped value.
    body: dict[str, Any] = {"overrides": {"docker": {pointer: value.strip()}}}
    try:
        accepted = parse_pattern(pattern, "x")(value) == value.strip()
    except ValueError:
        accepted = False
    assert accepted == SCHEMA.is_valid(body), value
