"""Fault plans: per endpoint, a queue of misbehaviours played one per matching request.

Endpoints: "POST build", "GET build" (read one), "GET builds" (list), "DELETE build",
"GET logs", "GET service", and "*" (any /v1 request; an endpoint's own queue is used first).

Compact string form (command line ``--fault 'POST build=reset-after,ok'``, config files and
``POST /_emulator/faults``):

    ok                      answer normally
    status:503              answer 503 with a JSON error body, without applying the request
    status:502:apply        apply the request (e.g. create the build), then answer 502
    429                     a rate-limit answer without Retry-After
    429:retry-after=2       a rate-limit answer with Retry-After: 2
    html:502                an HTML error page with status 502, as a proxy sends
    reset-before            close the connection without answering or applying the request
    reset-after             apply the request, then close the connection without answering
    delay:1.5               wait 1.5 s, then answer normally
    delay:5:apply-first     apply the request, wait 5 s, then send its answer
    truncated               apply the request and send its JSON answer cut in the middle
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, cast

FaultKind = Literal[
    "ok", "status", "rate-limit", "html", "reset-before", "reset-after", "delay", "truncated"
]
ENDPOINTS = ("POST build", "GET build", "GET builds", "DELETE build", "GET logs", "GET service")
ANY_ENDPOINT = "*"


class FaultError(ValueError):
    """A fault string or endpoint name the emulator does not understand."""


@dataclass(frozen=True)
class Fault:
    """One misbehaviour; ``apply`` means the request takes effect before the fault shows."""

    kind: FaultKind = "ok"
    status: int = 0
    seconds: float = 0.0
    apply: bool = False
    retry_after: float | None = None

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Read the compact string form (see the module docstring); raises FaultError."""
        parts = text.strip().split(":")
        head, args = parts[0], parts[1:]
        try:
            if head in ("ok", "reset-before", "reset-after", "truncated") and not args:
                return cls(cast(FaultKind, head))
            if head == "status" and len(args) in (1, 2) and args[1:] in ([], ["apply"]):
                return cls("status", status=_status(args[0]), apply=args[1:] == ["apply"])
            if head == "html" and len(args) == 1:
                return cls("html", status=_status(args[0]))
            if head == "429" and not args:
                return cls("rate-limit", status=429)
            if head == "429" and len(args) == 1 and args[0].startswith("retry-after="):
                seconds = float(args[0].removeprefix("retry-after="))
                return cls("rate-limit", status=429, retry_after=seconds)
            if head == "delay" and len(args) in (1, 2) and args[1:] in ([], ["apply-first"]):
                seconds = float(args[0])
                if seconds >= 0:
                    return cls("delay", seconds=seconds, apply=args[1:] == ["apply-first"])
        except ValueError:
            pass
        raise FaultError(
            f"unknown fault {text!r}: expected ok, status:CODE[:apply], 429[:retry-after=S], "
            "html:CODE, reset-before, reset-after, delay:S[:apply-first] or truncated"
        )

    def __str__(self) -> str:
        """The compact string form, so that Fault.parse(str(fault)) == fault."""
        if self.kind == "status":
            return f"status:{self.status}" + (":apply" if self.apply else "")
        if self.kind == "html":
            return f"html:{self.status}"
        if self.kind == "rate-limit":
            return "429" if self.retry_after is None else f"429:retry-after={self.retry_after:g}"
        if self.kind == "delay":
            return f"delay:{self.seconds:g}" + (":apply-first" if self.apply else "")
        return self.kind


def _status(text: str) -> int:
    status = int(text)
    if not 100 <= status <= 599:
        raise ValueError(text)
    return status


def check_endpoint(endpoint: str) -> str:
    """Return the endpoint name if faults can be queued for it; raises FaultError otherwise."""
    if endpoint not in (*ENDPOINTS, ANY_ENDPOINT):
        raise FaultError(f"unknown endpoint {endpoint!r}: expected one of {ENDPOINTS} or '*'")
    return endpoint


def parse_fault_option(text: str) -> tuple[str, list[Fault]]:
    """Read a command-line ``ENDPOINT=FAULT,FAULT,...`` option."""
    endpoint, sep, plan = text.partition("=")
    if not sep:
        raise FaultError(f"--fault {text!r}: expected ENDPOINT=FAULT[,FAULT...]")
    return check_endpoint(endpoint.strip()), [Fault.parse(part) for part in plan.split(",")]


def as_faults(faults: Iterable[Fault | str]) -> list[Fault]:
    """Faults given as dataclasses or compact strings, as dataclasses."""
    return [fault if isinstance(fault, Fault) else Fault.parse(fault) for fault in faults]


class FaultPlan:
    """Queues of faults per endpoint; not thread-safe on its own (the emulator locks around it)."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, endpoint: str, faults: Iterable[Fault | str]) -> None:
        """Append faults to an endpoint's queue."""
        queue = self._queues.setdefault(check_endpoint(endpoint), deque())
        queue.extend(as_faults(faults))

    def take(self, endpoint: str | None) -> Fault | None:
        """Consume the next fault for a request to endpoint (None: an unknown route)."""
        for key in (endpoint, ANY_ENDPOINT):
            queue = self._queues.get(key) if key else None
            if queue:
                return queue.popleft()
        return None

    def pending(self) -> dict[str, list[str]]:
        """The faults still queued, in string form."""
        return {key: [str(f) for f in queue] for key, queue in self._queues.items() if queue}

    def clear(self) -> None:
        """Forget every queued fault."""
        self._queues.clear()
