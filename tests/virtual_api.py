"""An emulator on a virtual clock for the emulator's own tests, and a session that talks to it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import requests

from northflank_build.emulator import Emulator, EmulatorConfig, ServiceConfig, VirtualClock

TOKEN = "full-token"
P = "/v1/projects/proj/services"
WALL = 1_760_000_000.0  # the virtual clock's epoch: 2025-10-09T08:53:20Z
SHA = "0123456789abcdef0123456789abcdef01234567"


def services(**changes: ServiceConfig) -> dict[str, dict[str, ServiceConfig]]:
    """One project with a service of each kind; changes add or replace services."""
    base = {
        "web": ServiceConfig("combined", "https://github.com/acme/web", "main"),
        "api": ServiceConfig("build", "https://github.com/acme/api"),
        "bundle": ServiceConfig("build", build_source="bundle"),
        "runtime": ServiceConfig("deployment"),
    }
    return {"proj": {**base, **changes}}


class Api:
    """An emulator on a virtual clock, with a session that sends the token."""

    def __init__(self, emulator: Emulator, clock: VirtualClock) -> None:
        self.emulator = emulator
        self.clock = clock
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(f"{self.emulator.url}{P}/{path}", params=params, timeout=5)

    def data(self, path: str, **params: Any) -> Any:
        answer = self.get(path, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    def start(self, service: str, body: object) -> dict[str, Any]:
        answer = self.session.post(f"{self.emulator.url}{P}/{service}/build", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    def statuses(self, service: str, build_id: str, step: float) -> list[str]:
        """Read the build every `step` virtual seconds until it concludes; statuses in order."""
        seen: list[str] = []
        for _ in range(10_000):
            status = self.data(f"{service}/build/{build_id}")
            if not seen or seen[-1] != status["status"]:
                seen.append(status["status"])
            if status["concluded"]:
                return seen
            self.clock.sleep(step)
        raise AssertionError(f"build {build_id} did not conclude: {seen}")


MakeApi = Callable[..., Api]


@contextlib.contextmanager
def api_factory() -> Iterator[MakeApi]:
    """Start emulators on a virtual clock (config: EmulatorConfig keywords); stop them after."""
    started: list[Api] = []

    def make(**config: Any) -> Api:
        config.setdefault("token", TOKEN)
        config.setdefault("projects", services())
        clock = VirtualClock(wall=WALL)
        emulator = Emulator(EmulatorConfig(**config), clock=clock.clock())
        emulator.start()
        started.append(Api(emulator, clock))
        return started[-1]

    try:
        yield make
    finally:
        for api in started:
            api.session.close()
            api.emulator.stop()


def epoch(ts: str) -> float:
    """Epoch seconds of an API timestamp."""
    return datetime.fromisoformat(ts).timestamp()
