"""What one run works on, as plain values the stages pass along: its targets, and how each ends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from northflank_build.client import Api, ServiceRef
from northflank_build.console import Console
from northflank_build.context import CiContext
from northflank_build.model import Build
from northflank_build.report import worst
from northflank_build.request import StartRequest
from northflank_build.settings import Settings
from northflank_build.signals import Signals

EXIT_SUCCESS, EXIT_BUILD_FAILED, EXIT_TIMEOUT = 0, 1, 4
SIGNALLED = 128  # exit codes from here on are 128 plus a signal's number


@dataclass(frozen=True, eq=False)
class Target:
    """One service to build, and the request that builds it; each target is itself alone (a key
    of the run's tables)."""

    service: ServiceRef
    request: StartRequest


@dataclass(frozen=True)
class Run:
    """What the stages before the start produced, for the stages after it."""

    settings: Settings
    ci: CiContext
    api: Api
    targets: tuple[Target, ...]
    console: Console
    signals: Signals
    env: Mapping[str, str] = field(repr=False)

    @property
    def several(self) -> bool:
        return len(self.targets) > 1

    def target_of(self, service: ServiceRef) -> Target:
        return next(t for t in self.targets if t.service == service)


@dataclass(frozen=True)
class Ending:
    """How the build of one target ends: its result and exit code, the build as last known,
    whether this run reused it rather than started it, and the log tail of a failure."""

    target: Target
    result: str
    code: int
    build: Build | None = None
    reused: bool = False
    log_tail: tuple[str, ...] = ()


def exit_code_of(endings: Sequence[Ending]) -> int:
    """The run's exit code: a signal's (130 or 143) when one ended the run, else that of its
    worst ending."""
    signalled = [e.code for e in endings if e.code >= SIGNALLED]
    if signalled:
        return signalled[0]
    result = worst(e.result for e in endings)
    return next(e.code for e in endings if e.result == result)
