"""The outcome as step outputs, an outputs file and a job summary. Knows nothing of HTTP.

outputs() is the one place that gives each output of action.yml its value; the job summary is
templates/summary.md, filled here.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from northflank_build.inputs import variable_name
from northflank_build.model import Build, iso

SUMMARY_TEMPLATE = Path(__file__).with_name("templates") / "summary.md"
SUMMARY_BUILDS_TEMPLATE = SUMMARY_TEMPLATE.with_name("summary-builds.md")
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


# The results of a run, worst first: with several services, the run's result is the worst.
RESULTS_WORST_FIRST = (
    "error", "timed-out", "failure", "aborted", "cancelled", "success", "started", "dry-run",
)  # fmt: skip
DOTENV_LIMIT = 5 * 1024  # bytes: GitLab refuses a larger dotenv report
DOTENV_SHORT = ("service-id", "build-id", "result", "status")  # of each build, when space is short


@dataclass(frozen=True)
class BuildOutcome:
    """How the build of one service ended, and what was asked of it."""

    service: str
    result: str
    request: Mapping[str, Any]
    target: str = ""
    build: Build | None = None
    reused: bool = False
    log_tail: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Outcome:
    """Everything the report needs to know about the run: one outcome per service."""

    builds: tuple[BuildOutcome, ...]
    api_requests: int
    run_url: str | None = None

    @property
    def result(self) -> str:
        """The run's result: its one build's, or the worst of several."""
        return worst(b.result for b in self.builds)


def worst(results: Iterable[str]) -> str:
    """The worst of the results, in RESULTS_WORST_FIRST's order."""
    return min(results, key=RESULTS_WORST_FIRST.index, default="error")


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


def build_outputs(item: BuildOutcome) -> dict[str, str]:
    """The outputs that describe one build, as strings."""
    build = item.build or Build(id="")
    duration = build.duration
    return {
        "build-id": build.id,
        "status": build.status,
        "result": item.result,
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
        "reused": _flag(item.reused),
    }


def outputs(outcome: Outcome) -> dict[str, Any]:
    """Every output of action.yml by name, in its order: strings, except request and build
    (objects) and builds (a list). With several services the outputs of one build are empty,
    and result, concluded and success speak for them all."""
    each = [{"service-id": b.service, **build_outputs(b)} for b in outcome.builds]
    if len(outcome.builds) == 1:
        [item] = outcome.builds
        one = build_outputs(item)
        request, build = dict(item.request), dict(item.build.data) if item.build else {}
    else:
        one = dict.fromkeys(build_outputs(BuildOutcome("", "", {})), "")
        one["result"] = outcome.result
        one["concluded"] = _flag(all(e["concluded"] == "true" for e in each))
        one["success"] = _flag(all(e["success"] == "true" for e in each))
        request, build = {}, {}
    reused = one.pop("reused")
    return {
        **one,
        "request": request,
        "build": build,
        "api-requests": str(outcome.api_requests),
        "reused": reused,
        "builds": each,
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


def _dotenv(values: Mapping[str, Any]) -> str:
    return "".join(f"{variable_name(k)}={dotenv_value(as_text(v))}\n" for k, v in values.items())


def _size(text: str) -> int:
    """Bytes as written: a lone surrogate from the API is replaced, as the writers do."""
    return len(text.encode("utf-8", errors="replace"))


def dotenv_text(values: Mapping[str, Any]) -> tuple[str, str]:
    """The dotenv lines, kept within GitLab's DOTENV_LIMIT, and a note of what was shortened.

    When the whole does not fit: first the request and build objects are left empty (a JSON
    outputs file holds them), then each entry of builds keeps DOTENV_SHORT alone.
    """
    text = _dotenv(values)
    if _size(text) <= DOTENV_LIMIT:
        return text, ""
    slim = {**values, "request": "", "build": ""}
    text = _dotenv(slim)
    note = "NORTHFLANK_REQUEST and NORTHFLANK_BUILD are left empty"
    if _size(text) > DOTENV_LIMIT:
        builds = [{k: b[k] for k in DOTENV_SHORT} for b in values.get("builds", [])]
        text = _dotenv({**slim, "builds": builds})
        note += f", and NORTHFLANK_BUILDS holds {', '.join(DOTENV_SHORT)} alone"
    if _size(text) > DOTENV_LIMIT:
        note += "; the report is still larger than GitLab takes"
    return text, f"{note} to keep the dotenv report within {DOTENV_LIMIT} bytes"


def write_outputs_file(path: Path, values: Mapping[str, Any]) -> str:
    """JSON, or dotenv KEY=VALUE lines when the name ends in .env; a note of what had to be
    shortened to fit, or ''."""
    note = ""
    if path.name.endswith(".env"):
        text, note = dotenv_text(values)
    else:
        text = json.dumps(values, indent=2, sort_keys=False) + "\n"
    path.write_text(text, encoding="utf-8", errors="replace", newline="")
    return note


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


def _target(item: BuildOutcome, values: Mapping[str, Any]) -> str:
    """The branch or pull request the API reports, else the request's target in words."""
    if values["pull-request-id"]:
        return f"pull request #{values['pull-request-id']}"
    if values["branch"]:
        return code(str(values["branch"]))
    return markdown_text(item.target.split(" at ")[0]) if item.target else ""


def _placeholders(line: str) -> list[str]:
    names = [m["named"] or m["braced"] for m in string.Template.pattern.finditer(line)]
    return [n for n in names if n]


def fill(template: str, values: Mapping[str, str], rows: Sequence[Mapping[str, str]] = ()) -> str:
    """The template with $name replaced by values[name].

    A line with $each_ placeholders is repeated for each of `rows` (a row per build); a line
    whose every placeholder is empty is left out, so that a row without a value does not show.
    """
    kept = []
    for line in template.splitlines():
        names = _placeholders(line)
        each = any(name.startswith("each_") for name in names)
        for fields in [{**values, **row} for row in rows] if each else [values]:
            if names and not any(fields[n] for n in names):
                continue
            kept.append(string.Template(line).substitute(fields))
    return "\n".join(kept) + "\n"


def _build_fields(item: BuildOutcome, values: Mapping[str, Any]) -> dict[str, str]:
    """The summary's fields of one build."""
    icon = RESULT_ICONS.get(item.result, "")
    return {
        "service": code(item.service),
        "build": code(str(values["build-id"])),
        "commit": code(str(values["sha"])[:7]),
        "target": _target(item, values),
        "status": markdown_text(str(values["status"])),
        "result": f"{icon} {item.result}".strip(),
        "duration": duration_text(item.build.duration if item.build else None),
        "image": code(str(values["image"])),
        "reused": "yes: not started by this run" if item.reused else "",
    }


def summary_markdown(outcome: Outcome, values: Mapping[str, Any]) -> str:
    """The job summary, from templates/summary.md (one service) or templates/summary-builds.md
    (several, a row each): at most SUMMARY_LIMIT bytes, each log tail keeping its newest lines
    that fit."""
    several = len(outcome.builds) > 1
    template = (SUMMARY_BUILDS_TEMPLATE if several else SUMMARY_TEMPLATE).read_text("utf-8")
    icon = RESULT_ICONS.get(outcome.result, "")
    each = [
        _build_fields(item, {**entry, "image": entry["image"]})
        for item, entry in zip(outcome.builds, values["builds"], strict=True)
    ]
    fields = {
        **(each[0] if not several else {}),
        "result": f"{icon} {outcome.result}".strip(),
        "api_requests": str(values["api-requests"]),
        "message": "",
        "run_link": "",
        "log": "",
    }
    rows = [{f"each_{name}": value for name, value in row.items()} for row in each]
    if not several and values["message"]:
        fields["message"] = f"\n> {markdown_text(str(values['message']), most=1000)}"
    if outcome.run_url:
        fields["run_link"] = f"\n[This CI run]({outcome.run_url})"
    budget = SUMMARY_LIMIT - _size(fill(template, fields, rows)) - 200
    tails = [item for item in outcome.builds if item.log_tail]
    blocks = []
    for item in tails:
        title = f"{item.service}: build log" if several else "Build log"
        blocks.append(_log_block(item.log_tail, budget // len(tails), title))
    fields["log"] = "".join(blocks)
    return fill(template, fields, rows)


def _log_block(lines: tuple[str, ...], budget: int, title: str = "Build log") -> str:
    """The log tail in a collapsed block: the newest lines that fit in budget bytes."""
    kept: list[str] = []
    for line in reversed([line[:LOG_LINE_CHARS] for line in lines]):
        budget -= _size(line) + 1
        if budget < 0:
            break
        kept.append(line)
    if not kept:
        return ""
    kept.reverse()
    # A fence longer than any run of backticks in the log, so no log line can close it.
    longest = max((len(run) for line in kept for run in re.findall("`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    title = f"{markdown_text(title)} (last {len(kept)} lines)"
    block = ["", f"<details><summary>{title}</summary>", "", fence + "text", *kept, fence, ""]
    return "\n".join([*block, "</details>"])
