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
from northflank_build.links import CodeHost, builds_url
from northflank_build.model import Build, iso

SUMMARY_TEMPLATE = Path(__file__).with_name("templates") / "summary.md"
SUMMARY_BUILDS_TEMPLATE = SUMMARY_TEMPLATE.with_name("summary-builds.md")
SUMMARY_LIMIT = 64 * 1024  # far below GitHub's 1 MiB per step, so a summary is never refused
LOG_LINE_CHARS = 500
RESULT_ICONS = {
    "success": "✅", "failure": "❌", "aborted": "🛑", "timed-out": "⏱️",
    "cancelled": "⚠️", "started": "🚀", "dry-run": "📝", "error": "❗",
}  # fmt: skip
# Characters that Markdown would read as syntax anywhere in text from the API (HTML's are written
# as entities), and at the start of a line (headings, lists, quotes).
MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]|~])")
HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
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
    # The log lines that explain the ending (a failure's errors, where a timed-out build was).
    highlights: tuple[str, ...] = field(default_factory=tuple)
    service_url: str | None = None
    code_host: CodeHost = field(default_factory=CodeHost)


@dataclass(frozen=True)
class Outcome:
    """Everything the report needs to know about the run: one outcome per service (none when
    the run ended before any request existed, with result `early`)."""

    builds: tuple[BuildOutcome, ...]
    api_requests: int
    run_url: str | None = None
    # Why the service is not linked, when a user could change that (e.g. give team-id).
    links_note: str = ""
    early: str = "error"

    @property
    def result(self) -> str:
        """The run's result: its one build's, or the worst of several."""
        return worst(b.result for b in self.builds) if self.builds else self.early


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
    (objects) and builds (a list). With several services (or none) the outputs of one build are
    empty, and result, concluded and success speak for them all."""
    each = [
        {"service-id": b.service, **build_outputs(b), "service-url": b.service_url or ""}
        for b in outcome.builds
    ]
    if len(outcome.builds) == 1:
        [item] = outcome.builds
        one = build_outputs(item)
        request, build = dict(item.request), dict(item.build.data) if item.build else {}
        page = item.service_url or ""
    else:
        one = dict.fromkeys(build_outputs(BuildOutcome("", "", {})), "")
        one["result"] = outcome.result
        one["concluded"] = _flag(bool(each) and all(e["concluded"] == "true" for e in each))
        one["success"] = _flag(bool(each) and all(e["success"] == "true" for e in each))
        request, build, page = {}, {}, ""
    reused = one.pop("reused")
    return {
        **one,
        "request": request,
        "build": build,
        "api-requests": str(outcome.api_requests),
        "reused": reused,
        "builds": each,
        "service-url": page,
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
    text = MARKDOWN_SYNTAX.sub(r"\\\1", text)
    text = "".join(HTML_ENTITIES.get(c, c) for c in text)
    return MARKDOWN_LINE_START.sub(r"\\\1", text)


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


def _target(item: BuildOutcome, values: Mapping[str, Any]) -> tuple[str, str]:
    """The row naming what was built: (its kind, its value), from the API's build, else from the
    request's target in words."""
    host = item.code_host
    if values["pull-request-id"]:
        number = int(values["pull-request-id"])
        words = host.change(number)
        kind, mark = words.rsplit(" ", 1)
        return kind.capitalize(), link(markdown_text(mark), host.change_url(number))
    if values["branch"]:
        return "Branch", code(str(values["branch"]))
    if item.target:
        return "Target", markdown_text(item.target.split(" at ")[0])
    return "", ""


def headline(result: str, build: Build | None, status: str, several: bool = False) -> str:
    """The run's ending in one line, with the status where it says more than the result."""
    status = markdown_text(status)
    icon = RESULT_ICONS.get(result, "")
    known = build is not None and bool(build.id)
    if several:
        return f"{icon} Northflank builds: {result}".strip()
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
    }.get(result, f"Northflank build: {result}")
    return f"{icon} {words}".strip()


HIGHLIGHT_TITLES = {
    "failure": "The log lines that explain the failure",
    "timed-out": "The last lines of the log when the time ran out",
}


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
    sha = str(values["sha"])
    target_kind, target = _target(item, values)
    icon = RESULT_ICONS.get(item.result, "")
    return {
        "service": link(code(item.service), item.service_url),
        "build": link(code(str(values["build-id"])), builds_url(item.service_url)),
        "commit": link(code(sha[:7]), item.code_host.commit_url(sha)),
        "target_kind": target_kind,
        "target": target,
        "result": f"{icon} {item.result}".strip(),
        "status": markdown_text(str(values["status"])),
        "duration": duration_text(item.build.duration if item.build else None),
        # The API names the image before it exists: only a successful build has one.
        "image": code(str(values["image"])) if item.result == "success" else "",
        "reused": "yes: not started by this run" if item.reused else "",
    }


def summary_markdown(outcome: Outcome, values: Mapping[str, Any]) -> str:
    """The job summary, from templates/summary.md (one service) or templates/summary-builds.md
    (several, a row each): at most SUMMARY_LIMIT bytes, each log tail keeping its newest lines
    that fit."""
    several = len(outcome.builds) > 1
    template = (SUMMARY_BUILDS_TEMPLATE if several else SUMMARY_TEMPLATE).read_text("utf-8")
    each = [
        _build_fields(item, entry)
        for item, entry in zip(outcome.builds, values["builds"], strict=True)
    ]
    first = outcome.builds[0] if outcome.builds else None
    # Several services build one target: its commit and branch are the first build's.
    shared = ("commit", "target_kind", "target")
    fields = {
        **(each[0] if each and not several else {}),
        **({k: each[0][k] for k in shared} if each and several else {}),
        "headline": headline(
            outcome.result, first.build if first else None, str(values["status"]), several
        ),
        "api_requests": str(values["api-requests"]),
        "message": "",
        "highlights": "",
        "run_link": "",
        "links_note": f"\n{markdown_text(outcome.links_note)}" if outcome.links_note else "",
        "log": "",
    }
    rows = [{f"each_{name}": value for name, value in row.items()} for row in each]
    for row, item in zip(rows, outcome.builds, strict=True):
        row["each_reused"] = " (reused)" if item.reused else ""
    if not several and values["message"]:
        fields["message"] = f"\n> {markdown_text(str(values['message']), most=1000)}"
    if outcome.run_url:
        fields["run_link"] = f"\n{link('This CI run', outcome.run_url)}"
    fields["highlights"] = "".join(_highlights(item, several) for item in outcome.builds)
    budget = SUMMARY_LIMIT - _size(fill(template, fields, rows)) - 200
    tails = [item for item in outcome.builds if item.log_tail]
    blocks = []
    for item in tails:
        title = f"{item.service}: build log" if several else "Build log"
        blocks.append(_log_block(item.log_tail, budget // len(tails), title))
    fields["log"] = "".join(blocks)
    return fill(template, fields, rows)


def _highlights(item: BuildOutcome, several: bool) -> str:
    """The few log lines that explain the ending, shown before the collapsed log."""
    title = HIGHLIGHT_TITLES.get(item.result)
    if not title or not item.highlights:
        return ""
    title = f"{title} of {item.service}:" if several else f"{title}:"
    lines = [line[:LOG_LINE_CHARS] for line in item.highlights]
    fence = _fence(lines)
    return "\n".join(["", markdown_text(title), "", fence + "text", *lines, fence])


def _fence(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in the lines, so none can close it."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)


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
    fence = _fence(kept)
    title = f"{markdown_text(title)} (last {len(kept)} lines)"
    block = ["", f"<details><summary>{title}</summary>", "", fence + "text", *kept, fence, ""]
    return "\n".join([*block, "</details>"])
