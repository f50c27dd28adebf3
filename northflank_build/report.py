"""The outcome as step outputs, an outputs file and a job summary. Knows nothing of HTTP."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUTPUT_NAMES = (
    "build-id", "status", "result", "concluded", "success", "sha", "branch", "pull-request-id",
    "image", "created-at", "concluded-at", "duration-seconds", "message", "request", "build",
    "api-requests",
)  # fmt: skip
NESTED = ("request", "build")
SUMMARY_LIMIT = 64 * 1024  # far below GitHub's 1 MiB per step, so a summary is never refused
LOG_LINE_CHARS = 500
RESULT_ICONS = {
    "success": "✅", "failure": "❌", "aborted": "🛑", "timed-out": "⏱️",
    "cancelled": "⚠️", "started": "🚀", "dry-run": "📝",
}  # fmt: skip


@dataclass
class Outcome:
    """Everything the report needs to know about the run."""

    result: str
    request: dict[str, Any]
    api_requests: int
    build: dict[str, Any] | None = None
    service: str = ""
    target: str = ""
    log_tail: list[str] = field(default_factory=list)
    run_url: str | None = None


def iso_time(value: Any) -> str:
    """An API timestamp (ISO 8601 text, or Unix seconds or milliseconds) as ISO 8601 UTC."""
    if isinstance(value, bool) or value in (None, ""):
        return ""
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10**11 else value
        return (
            datetime.fromtimestamp(seconds, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
    return str(value)


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def duration_seconds(build: dict[str, Any]) -> int | None:
    start = _parse_time(iso_time(build.get("createdAt")))
    end = _parse_time(iso_time(build.get("buildConcludedAt") or build.get("concludedAt")))
    if start is None or end is None or not build.get("concluded"):
        return None
    return max(0, round((end - start).total_seconds()))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def outputs(outcome: Outcome) -> dict[str, Any]:
    """Every output by name: strings, except request and build, which are objects."""
    build = outcome.build or {}
    registry = build.get("registry") if isinstance(build.get("registry"), dict) else {}
    concluded = bool(build.get("concluded"))
    duration = duration_seconds(build)
    concluded_at = build.get("buildConcludedAt") or build.get("concludedAt")
    return {
        "build-id": _text(build.get("id")),
        "status": _text(build.get("status")),
        "result": outcome.result,
        "concluded": _text(concluded),
        "success": _text(concluded and build.get("success") is True),
        "sha": _text(build.get("sha")),
        "branch": _text(build.get("branch")),
        "pull-request-id": _text(build.get("pullRequestId")),
        "image": _text((registry or {}).get("uri")),
        "created-at": iso_time(build.get("createdAt")),
        "concluded-at": iso_time(concluded_at) if concluded else "",
        "duration-seconds": _text(duration),
        "message": _text(build.get("message")),
        "request": outcome.request,
        "build": build,
        "api-requests": _text(outcome.api_requests),
    }


def as_text(value: Any) -> str:
    """An output value as one string: objects as compact JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def github_output_block(name: str, value: str) -> str:
    """name<<DELIMITER ... DELIMITER, the multi-line form the runner parses."""
    delimiter = f"ghadelimiter_{uuid.uuid4()}"
    while delimiter in value or delimiter in name:
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def write_github_output(path: Path, values: dict[str, Any]) -> None:
    """Append the values to GITHUB_OUTPUT."""
    text = "".join(github_output_block(k, as_text(v)) for k, v in values.items())
    # errors="replace": a lone surrogate from the API must not stop the outputs being written.
    with path.open("a", encoding="utf-8", errors="replace", newline="") as file:
        file.write(text)


def dotenv_name(name: str) -> str:
    return "NORTHFLANK_" + name.upper().replace("-", "_")


def dotenv_value(value: str) -> str:
    """One line: backslashes and line breaks escaped as \\\\, \\n and \\r."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def write_outputs_file(path: Path, values: dict[str, Any]) -> None:
    """JSON, or dotenv KEY=VALUE lines when the name ends in .env."""
    if path.name.endswith(".env"):
        text = "".join(f"{dotenv_name(k)}={dotenv_value(as_text(v))}\n" for k, v in values.items())
    else:
        text = json.dumps(values, indent=2, sort_keys=False) + "\n"
    path.write_text(text, encoding="utf-8", errors="replace", newline="")


def _cell(text: str, most: int = 300) -> str:
    """Text for one table cell: one line, pipes escaped, cut to `most` characters."""
    text = " ".join(text.split())
    text = text if len(text) <= most else text[: most - 1] + "…"
    return text.replace("|", "\\|") or "-"


def _code(text: str) -> str:
    """Inline code that no backtick inside the text can close."""
    if not text:
        return ""
    ticks = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _duration(seconds: str) -> str:
    if not seconds.isdigit():
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _target(outcome: Outcome, values: dict[str, Any]) -> str:
    """The branch or pull request the API reports, else the request's target in words."""
    if values["pull-request-id"]:
        return f"pull request #{values['pull-request-id']}"
    if values["branch"]:
        return _code(str(values["branch"]))
    return outcome.target.split(" at ")[0] if outcome.target else ""


def summary_markdown(outcome: Outcome, values: dict[str, Any]) -> str:
    """A compact job summary: a table, the API's message, the log tail collapsed, a run link.

    At most SUMMARY_LIMIT bytes: the log tail keeps its newest lines that fit.
    """
    icon = RESULT_ICONS.get(outcome.result, "")
    sha = str(values["sha"])
    rows = [
        ("Service", _code(outcome.service)),
        ("Build", _code(str(values["build-id"]))),
        ("Commit", _code(sha[:7])),
        ("Branch or pull request", _target(outcome, values)),
        ("Status", str(values["status"])),
        ("Result", f"{icon} {outcome.result}".strip()),
        ("Duration", _duration(str(values["duration-seconds"]))),
        ("Image", _code(str(values["image"]))),
        ("API requests", str(values["api-requests"])),
    ]
    head = ["### Northflank build", "", "| | |", "|---|---|"]
    head += [f"| {name} | {_cell(value)} |" for name, value in rows]
    if values["message"]:
        head += ["", f"> {_cell(str(values['message']), most=1000)}"]
    foot = ["", f"[This CI run]({outcome.run_url})"] if outcome.run_url else []
    used = len("\n".join(head + foot).encode("utf-8")) + 200
    tail = _log_block(outcome.log_tail, SUMMARY_LIMIT - used)
    return "\n".join(head + tail + foot) + "\n"


def _log_block(lines: list[str], budget: int) -> list[str]:
    """The log tail in a collapsed block: the newest lines that fit in budget bytes."""
    kept: list[str] = []
    for line in reversed([line[:LOG_LINE_CHARS] for line in lines]):
        budget -= len(line.encode("utf-8")) + 1
        if budget < 0:
            break
        kept.append(line)
    if not kept:
        return []
    kept.reverse()
    # A fence longer than any run of backticks in the log, so no log line can close it.
    longest = max((len(run) for line in kept for run in re.findall("`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    title = f"Build log (last {len(kept)} lines)"
    return [
        "",
        f"<details><summary>{title}</summary>",
        "",
        fence + "text",
        *kept,
        fence,
        "",
        "</details>",
    ]


def append_summary(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8", errors="replace") as file:
        file.write(text)
