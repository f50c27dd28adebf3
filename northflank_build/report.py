"""The outcome as step outputs, an outputs file and a job summary. Knows nothing of HTTP.

outputs() is the one place that gives each output of action.yml its value; the job summary is
templates/summary.md, filled here.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from northflank_build.inputs import variable_name
from northflank_build.links import CodeHost, builds_url
from northflank_build.model import Build, iso

SUMMARY_TEMPLATE = Path(__file__).with_name("templates") / "summary.md"
SUMMARY_LIMIT = 64 * 1024  # far below GitHub's 1 MiB per step, so a summary is never refused
LOG_LINE_CHARS = 500
RESULT_ICONS = {
    "success": "✅", "failure": "❌", "aborted": "🛑", "timed-out": "⏱️",
    "cancelled": "⚠️", "started": "🚀", "dry-run": "📝", "error": "❗",
}  # fmt: skip
# Characters that Markdown or HTML would read as syntax anywhere in text from the API, and at
# the start of a line (headings, lists, quotes).
MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]<>&|~])")
MARKDOWN_LINE_START = re.compile(r"^([#+\-=>]|\d+[.)])")


@dataclass(frozen=True)
class Outcome:
    """Everything the report needs to know about the run."""

    result: str
    request: Mapping[str, Any]
    api_requests: int
    build: Build | None = None
    service: str = ""
    target: str = ""
    log_tail: tuple[str, ...] = field(default_factory=tuple)
    run_url: str | None = None
    # The log lines that explain the ending (a failure's errors, where a timed-out build was).
    highlights: tuple[str, ...] = field(default_factory=tuple)
    service_url: str | None = None
    code_host: CodeHost = field(default_factory=CodeHost)
    # Why the service is not linked, when a user could change that (e.g. give team-id).
    links_note: str = ""


def duration_text(seconds: float | None) -> str:
    """A duration as people read it: 45s, 3m05s, 1h02m; '' when unknown."""
    if seconds is None:
        return ""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def outputs(outcome: Outcome) -> dict[str, Any]:
    """Every output of action.yml by name: strings, except request and build (objects)."""
    build = outcome.build
    if build is None:
        build = Build(id="")
    duration = build.duration
    return {
        "build-id": build.id,
        "status": build.status,
        "result": outcome.result,
        "concluded": _flag(build.concluded),
        "success": _flag(build.succeeded),
        "sha": build.sha,
        "branch": build.branch,
        "pull-request-id": "" if build.pull_request_id is None else str(build.pull_request_id),
        "image": build.image,
        "created-at": iso(build.created_at),
        "concluded-at": iso(build.concluded_at) if build.concluded else "",
        "duration-seconds": "" if duration is None else str(round(duration)),
        "message": build.message,
        "request": dict(outcome.request),
        "build": dict(build.data),
        "api-requests": str(outcome.api_requests),
        "service-url": outcome.service_url or "",
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


def write_github_output(path: Path, values: Mapping[str, Any]) -> None:
    """Append the values to GITHUB_OUTPUT."""
    text = "".join(github_output_block(k, as_text(v)) for k, v in values.items())
    # errors="replace": a lone surrogate from the API must not stop the outputs being written.
    with path.open("a", encoding="utf-8", errors="replace", newline="") as file:
        file.write(text)


def dotenv_value(value: str) -> str:
    """One line: backslashes and line breaks escaped as \\\\, \\n and \\r."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def write_outputs_file(path: Path, values: Mapping[str, Any]) -> None:
    """JSON, or dotenv KEY=VALUE lines when the name ends in .env."""
    if path.name.endswith(".env"):
        text = "".join(
            f"{variable_name(k)}={dotenv_value(as_text(v))}\n" for k, v in values.items()
        )
    else:
        text = json.dumps(values, indent=2, sort_keys=False) + "\n"
    path.write_text(text, encoding="utf-8", errors="replace", newline="")


def append_summary(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8", errors="replace") as file:
        file.write(text)


# -- the job summary ---------------------------------------------------------------------------


def markdown_text(text: str, most: int = 300) -> str:
    """Text from elsewhere as Markdown that shows it as written: on one line, cut to `most`
    characters, with every character that Markdown or HTML would read as syntax escaped."""
    text = " ".join(text.split())
    text = text if len(text) <= most else text[: most - 1] + "…"
    return MARKDOWN_LINE_START.sub(r"\\\1", MARKDOWN_SYNTAX.sub(r"\\\1", text))


def code(text: str) -> str:
    """Inline code that no backtick inside the text can close; '' for no text."""
    text = " ".join(text.split())
    if not text:
        return ""
    ticks = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def link(text: str, url: str | None) -> str:
    """Markdown text as a link to url; the text alone without one."""
    if not text or not url:
        return text
    return f"[{text}](<{url}>)" if not any(c in url for c in "<>\n") else text


def _target(outcome: Outcome, values: Mapping[str, Any]) -> tuple[str, str]:
    """The row naming what was built: (its kind, its value), from the API's build, else from the
    request's target in words."""
    host = outcome.code_host
    if values["pull-request-id"]:
        number = int(values["pull-request-id"])
        words = host.change(number)
        kind, mark = words.rsplit(" ", 1)
        return kind.capitalize(), link(markdown_text(mark), host.change_url(number))
    if values["branch"]:
        return "Branch", code(str(values["branch"]))
    if outcome.target:
        return "Target", markdown_text(outcome.target.split(" at ")[0])
    return "", ""


def headline(outcome: Outcome, status: str) -> str:
    """The run's ending in one line, with the status where it says more than the result."""
    status = markdown_text(status)
    icon = RESULT_ICONS.get(outcome.result, "")
    known = outcome.build is not None and bool(outcome.build.id)
    words = {
        "success": "Northflank build succeeded",
        "failure": "Northflank build failed" + (f": {status}" if status != "FAILURE" else ""),
        "aborted": "Northflank build aborted",
        "timed-out": "Timed out waiting for the Northflank build"
        + (": aborted" if status == "ABORTED" else f", still {status}" if status else ""),
        "cancelled": "Cancelled; the Northflank build goes on running"
        if known
        else "Cancelled before a Northflank build was known",
        "started": "Northflank build started" + (f" ({status})" if status else ""),
        "dry-run": "Dry run: no Northflank build was started",
        "error": "The Northflank API failed"
        + ("; the build may still be running" if known else ""),
    }.get(outcome.result, f"Northflank build: {outcome.result}")
    return f"{icon} {words}".strip()


HIGHLIGHT_TITLES = {
    "failure": "The log lines that explain the failure:",
    "timed-out": "The last lines of the log when the time ran out:",
}


def fill(template: str, values: Mapping[str, str]) -> str:
    """The template with $name replaced by values[name]; a line whose every placeholder is
    empty is left out, so that a row without a value does not show."""
    kept = []
    for line in template.splitlines():
        names = [m["named"] or m["braced"] for m in string.Template.pattern.finditer(line)]
        names = [n for n in names if n]
        if names and not any(values[n] for n in names):
            continue
        kept.append(string.Template(line).substitute(values))
    return "\n".join(kept) + "\n"


def summary_markdown(outcome: Outcome, values: Mapping[str, Any]) -> str:
    """The job summary, from templates/summary.md: at most SUMMARY_LIMIT bytes, the log tail
    keeping its newest lines that fit."""
    template = SUMMARY_TEMPLATE.read_text(encoding="utf-8")
    build = outcome.build
    sha = str(values["sha"])
    target_kind, target = _target(outcome, values)
    fields = {
        "headline": headline(outcome, str(values["status"])),
        "service": link(code(outcome.service), outcome.service_url),
        "build": link(code(str(values["build-id"])), builds_url(outcome.service_url)),
        "commit": link(code(sha[:7]), outcome.code_host.commit_url(sha)),
        "target_kind": target_kind,
        "target": target,
        "duration": duration_text(build.duration if build else None),
        # The API names the image before it exists: only a successful build has one.
        "image": code(str(values["image"])) if outcome.result == "success" else "",
        "api_requests": str(values["api-requests"]),
        "message": "",
        "highlights": _highlights(outcome),
        "run_link": "",
        "links_note": f"\n{markdown_text(outcome.links_note)}" if outcome.links_note else "",
        "log": "",
    }
    if values["message"]:
        fields["message"] = f"\n> {markdown_text(str(values['message']), most=1000)}"
    if outcome.run_url:
        fields["run_link"] = f"\n{link('This CI run', outcome.run_url)}"
    used = len(fill(template, fields).encode("utf-8")) + 200
    fields["log"] = _log_block(outcome.log_tail, SUMMARY_LIMIT - used)
    return fill(template, fields)


def _highlights(outcome: Outcome) -> str:
    """The few log lines that explain the ending, shown before the collapsed log."""
    title = HIGHLIGHT_TITLES.get(outcome.result)
    if not title or not outcome.highlights:
        return ""
    lines = [line[:LOG_LINE_CHARS] for line in outcome.highlights]
    fence = _fence(lines)
    return "\n".join(["", title, "", fence + "text", *lines, fence])


def _fence(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in the lines, so none can close it."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _log_block(lines: tuple[str, ...], budget: int) -> str:
    """The log tail in a collapsed block: the newest lines that fit in budget bytes."""
    kept: list[str] = []
    for line in reversed([line[:LOG_LINE_CHARS] for line in lines]):
        budget -= len(line.encode("utf-8")) + 1
        if budget < 0:
            break
        kept.append(line)
    if not kept:
        return ""
    kept.reverse()
    fence = _fence(kept)
    title = f"Build log (last {len(kept)} lines)"
    block = ["", f"<details><summary>{title}</summary>", "", fence + "text", *kept, fence, ""]
    return "\n".join([*block, "</details>"])
