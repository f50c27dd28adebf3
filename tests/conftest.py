"""Shared fixtures: an emulator of the Northflank API on 127.0.0.1 with quick builds."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from northflank_build.emulator import Emulator, EmulatorConfig, ServiceConfig
from northflank_build.emulator.config import PastBuild
from tests.clock import CLOCK
from tests.scripted import scripted  # noqa: F401 (a fixture for every test module)

TOKEN = "nf-test-token-5a1b2c3d4e"
PROJECT = "demo-project"
FAST = {"QUEUED": 0.1, "CLONING": 0.1, "BUILDING": 0.3, "UPLOADING": 0.1}


def fast_world(**changes: Any) -> dict[str, dict[str, ServiceConfig]]:
    """Services with builds that conclude in well under a second; changes override per service."""
    history = [PastBuild("success", duration=40, age=7200, branch="main")]
    services = {
        "web": ServiceConfig(
            "combined", "https://github.com/acme/web", "main", phases=dict(FAST), history=history
        ),
        "api": ServiceConfig("build", "https://github.com/acme/api", phases=dict(FAST)),
        "api-fails": ServiceConfig(
            "build", "https://github.com/acme/api", phases=dict(FAST), outcome="failure"
        ),
        "api-crashes": ServiceConfig(
            "build", "https://github.com/acme/api", phases=dict(FAST), outcome="crash"
        ),
        "api-slow": ServiceConfig(
            "build",
            "https://github.com/acme/api",
            phases={"QUEUED": 0.2, "CLONING": 0.2, "BUILDING": 120.0, "UPLOADING": 0.1},
        ),
        "other-repo": ServiceConfig("build", "https://github.com/acme/other", phases=dict(FAST)),
        "runtime": ServiceConfig("deployment"),
        "bundle": ServiceConfig("build", build_source="bundle", phases=dict(FAST)),
    }
    services.update(changes)
    return {PROJECT: services}


MakeEmulator = Callable[..., Emulator]


@pytest.fixture
def make_emulator() -> Iterator[MakeEmulator]:
    """Start emulators with a given config, on the tests' clock; all are stopped after the test."""
    started: list[Emulator] = []

    def make(**config: Any) -> Emulator:
        config.setdefault("token", TOKEN)
        config.setdefault("projects", fast_world())
        emulator = Emulator(EmulatorConfig(**config), clock=CLOCK.emulator_clock())
        emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: MakeEmulator) -> Emulator:
    return make_emulator()


def api_requests(emulator: Emulator) -> list[Any]:
    """The /v1 requests the emulator received."""
    return [r for r in emulator.requests if r.path.startswith("/v1/")]


def started_builds(emulator: Emulator) -> list[Any]:
    return [r for r in api_requests(emulator) if r.method == "POST"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker of pytest -n hands its audit figures to the session that reports them."""
    from tests.audit import TALLY

    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["audit"] = (TALLY.runs, TALLY.texts, TALLY.hits)


def pytest_testnodedown(node: Any, error: Any) -> None:
    """The reporting session adds up its workers' audit figures (pytest -n)."""
    from tests.audit import TALLY

    runs, texts, hits = getattr(node, "workeroutput", {}).get("audit", (0, 0, 0))
    TALLY.runs += runs
    TALLY.texts += texts
    TALLY.hits += hits


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The secrets audit's figures (tests/audit.py): runs and texts searched, secrets found."""
    from tests.audit import TALLY

    if TALLY.runs:
        terminalreporter.write_line(
            f"secrets audit: {TALLY.runs} runs, {TALLY.texts} texts searched, {TALLY.hits} hits"
        )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The image checks (marker `image`) run, or the session fails saying why they cannot.

    Only SKIP_IMAGE_TESTS=1 skips them, for a machine without a container engine; CI never sets it.
    """
    from tests import podman

    wanted = [item for item in items if item.get_closest_marker("image")]
    if not wanted:
        return
    if os.environ.get(podman.SKIP_VARIABLE) == "1":
        skip = pytest.mark.skip(reason=f"{podman.SKIP_VARIABLE}=1: the image checks were skipped")
        for item in wanted:
            item.add_marker(skip)
        return
    problem = podman.problem()
    if problem is not None:
        # Each image check fails with the reason (a collection error would be lost among the
        # workers of pytest -n), and the session with them.
        cannot = pytest.mark.cannot_run(f"the image checks cannot run here: {problem}")
        for item in wanted:
            item.add_marker(cannot)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """An image check that cannot run here fails at once, saying why and how to skip it."""
    from tests import podman

    cannot = item.get_closest_marker("cannot_run")
    if cannot is not None:
        pytest.fail(f"{cannot.args[0]}\n{podman.HOW_TO_SKIP}", pytrace=False)
