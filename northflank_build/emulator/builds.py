"""One build: the phases it passes through over time, its API object and its log as it stands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .clock import iso_from_ms
from .config import WAITING_PHASES, Outcome
from .story import ABORT_MESSAGE, MESSAGES, LogLine, abort_line

FINAL_STATUS = {
    "success": "SUCCESS",
    "failure": "FAILURE",
    "crash": "CRASHED",
    "aborted": "ABORTED",
    "unschedulable": "UNSCHEDULABLE",
    "submission-failure": "SUBMISSION_FAILURE",
}
START_STATUS = "PENDING"  # what a start answer says, as in the API's example

Schedule = list[tuple[str, int, int]]  # (status, start ms, end ms) after creation


@dataclass
class Build:
    """One build; its status follows from the time elapsed since created (monotonic)."""

    id: str
    project_id: str
    service_id: str
    seq: int
    created: float
    created_ms: int
    schedule: Schedule
    outcome: Outcome
    lines: list[LogLine]
    sha: str
    image: str
    branch: str | None = None
    pull_request_id: int | None = None
    kept: bool = False  # from the config: survives a reset
    aborted_ms: int | None = None

    @property
    def conclusion_ms(self) -> int:
        """Milliseconds after creation at which the build concludes (or was aborted)."""
        if self.aborted_ms is not None:
            return self.aborted_ms
        return self.schedule[-1][2] if self.schedule else 0

    def status_at(self, now: float) -> tuple[str, bool]:
        """(status, concluded) at a monotonic time; a phase of 0 ms is never seen."""
        elapsed_ms = (now - self.created) * 1000
        if self.aborted_ms is not None and elapsed_ms >= self.aborted_ms:
            return "ABORTED", True
        for status, _, end_ms in self.schedule:
            if elapsed_ms < end_ms:
                return status, False
        return FINAL_STATUS[self.outcome], True

    def to_json(self, now: float) -> dict[str, Any]:
        """The API's build object at a monotonic time; keys without a value are left out."""
        status, concluded = self.status_at(now)
        data: dict[str, Any] = {"id": self.id}
        if self.branch is not None:
            data["branch"] = self.branch
        if self.pull_request_id is not None:
            data["pullRequestId"] = self.pull_request_id
        data.update(
            sha=self.sha,
            status=status,
            registry={"uri": self.image},
            concluded=concluded,
            createdAt=iso_from_ms(self.created_ms),
        )
        if concluded:
            data["success"] = status == "SUCCESS"
            aborted = self.aborted_ms is not None
            data["message"] = ABORT_MESSAGE if aborted else MESSAGES[self.outcome]
            data["buildConcludedAt"] = (self.created_ms + self.conclusion_ms) / 1000
        return data

    def start_answer(self, now: float) -> dict[str, Any]:
        """The start request's answer: the build just initiated, PENDING and not concluded."""
        data = self.to_json(now)
        for key in ("success", "message", "buildConcludedAt"):
            data.pop(key, None)
        data.update(status=START_STATUS, concluded=False)
        return data

    def visible_lines(self) -> list[LogLine]:
        """The whole log as it stands: cut at the abort when there was one."""
        if self.aborted_ms is None:
            return list(self.lines)
        kept = [line for line in self.lines if line.offset_ms <= self.aborted_ms]
        return [*kept, abort_line(self.id, self.aborted_ms)]

    def emitted_lines(self, now: float) -> list[tuple[int, LogLine]]:
        """(epoch ms, line) for the lines logged by a monotonic time, in order."""
        elapsed_ms = (now - self.created) * 1000
        return [
            (self.created_ms + line.offset_ms, line)
            for line in self.visible_lines()
            if line.offset_ms <= elapsed_ms
        ]


def plan_schedule(phases: dict[str, float], outcome: Outcome, stretch_to: float | None) -> Schedule:
    """(status, start ms, end ms) per phase the outcome runs through.

    Success runs every phase; failure, crash and aborted stop after BUILDING; unschedulable and
    submission-failure after the waiting phases. With stretch_to, the phases used are stretched
    (or shrunk) to last that many seconds in all.
    """
    used = list(phases)
    if outcome in ("unschedulable", "submission-failure"):
        used = [phase for phase in used if phase in WAITING_PHASES]
    elif outcome != "success" and "BUILDING" in used:
        used = used[: used.index("BUILDING") + 1]
    lengths = [phases[phase] for phase in used]
    if stretch_to is not None and used:
        total = sum(lengths)
        lengths = [
            length * stretch_to / total if total else stretch_to / len(used) for length in lengths
        ]
    schedule: Schedule = []
    start = 0.0
    for phase, length in zip(used, lengths, strict=True):
        schedule.append((phase, round(start * 1000), round((start + length) * 1000)))
        start += length
    return schedule
