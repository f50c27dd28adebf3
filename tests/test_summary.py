"""The job summary: written by the program end to end, then parsed and checked field by field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from northflank_build.model import Build
from northflank_build.report import SUMMARY_LIMIT, BuildOutcome, Outcome, outputs, summary_markdown
from tests.conftest import PROJECT, TOKEN, MakeEmulator
from tests.runner import EVENTS, Result, github_env, run


def action(tmp_path: Path, url: str, service: str, event: str, **github: str) -> Result:
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": service,
        "api-url": url,
        "poll-interval": "0.1",
        "timeout": "60",
    }
    env = github_env(tmp_path, values, event_name=event, event=f"{event}.json", extra=github)
    return run(env, tmp=tmp_path)


def table(summary: str) -> dict[str, str]:
    """The summary's two-column table as a mapping of field to value."""
    rows = re.findall(r"^\| (.+?) \| (.*) \|$", summary, flags=re.MULTILINE)
    return {name: value for name, value in rows if name.strip()}


def log_block(summary: str) -> list[str] | None:
    """The lines inside the collapsed log block, or None when there is none."""
    match = re.search(
        r"<details><summary>Build log \(last (\d+) lines\)</summary>\n\n(`{3,})text\n(.*?)\n\2\n"
        r"\n</details>",
        summary,
        flags=re.DOTALL,
    )
    if match is None:
        return None
    lines = match.group(3).split("\n")
    assert len(lines) == int(match.group(1))
    return lines


def test_summary_of_a_successful_push_build(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    push = json.loads((EVENTS / "push.json").read_text(encoding="utf-8"))
    result = action(
        tmp_path, emulator.url, "api", "push", GITHUB_SHA=push["after"], GITHUB_REF=push["ref"]
    )
    assert result.code == 0, result.text
    [build] = emulator.builds(PROJECT, "api")
    fields = table(result.summary)
    assert fields == {
        "Service": "`api`",
        "Build": f"`{build['id']}`",
        "Commit": f"`{push['after'][:7]}`",
        "Branch or pull request": f"`{push['ref'].removeprefix('refs/heads/')}`",
        "Status": "SUCCESS",
        "Result": "✅ success",
        "Duration": f"{result.outputs['duration-seconds']}s",
        "Image": f"`{build['registry']['uri']}`",
        "API requests": result.outputs["api-requests"],
    }
    assert result.summary.startswith("### Northflank build\n")
    assert "> Image successfully built" in result.summary
    assert log_block(result.summary) is None
    assert "[This CI run](https://github.com/acme/api/actions/runs/1234)" in result.summary
    assert TOKEN not in result.summary


def test_summary_of_a_failed_pull_request_build(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    payload = json.loads((EVENTS / "pull_request.json").read_text(encoding="utf-8"))
    result = action(tmp_path, emulator.url, "api-fails", "pull_request", GITHUB_SHA="f" * 40)
    assert result.code == 1, result.text
    [build] = emulator.builds(PROJECT, "api-fails")
    fields = table(result.summary)
    assert fields["Build"] == f"`{build['id']}`"
    assert fields["Commit"] == f"`{payload['pull_request']['head']['sha'][:7]}`"
    assert fields["Branch or pull request"] == f"pull request #{payload['pull_request']['number']}"
    assert fields["Status"] == "FAILURE"
    assert fields["Result"] == "❌ failure"
    assert re.fullmatch(r"\d+s", fields["Duration"])
    assert "> Build failed at step 7/9 (RUN npm test)" in result.summary
    whole = [line["log"] for line in emulator.log_lines(PROJECT, "api-fails", build["id"])]
    assert log_block(result.summary) == whole[-100:]


def outcome(log_tail: list[str], **build: Any) -> tuple[Outcome, dict[str, Any]]:
    base = {"id": "brave-river-1234", "status": "FAILURE", "concluded": True, "success": False}
    parsed = Build.parse({**base, **build})
    item = BuildOutcome("api", "failure", {}, build=parsed, log_tail=tuple(log_tail))
    result = Outcome((item,), 7)
    return result, outputs(result)


def test_a_huge_log_is_cut_to_fit_keeping_its_newest_lines() -> None:
    tail = [f"line {n} " + "x" * 5000 for n in range(100)] + ["the last line"]
    summary = summary_markdown(*outcome(tail, message="m" * 100_000))
    assert len(summary.encode("utf-8")) <= SUMMARY_LIMIT
    block = log_block(summary)
    assert block is not None
    assert block[-1] == "the last line"
    assert all(len(line) <= 500 for line in block)
    assert table(summary)["Status"] == "FAILURE"


def test_log_lines_and_api_values_cannot_break_the_markdown() -> None:
    tail = ["```", "</details>", "| a | b |", "````` five"]
    summary = summary_markdown(*outcome(tail, message="a | b\nc", registry={"uri": "r`x`"}))
    assert log_block(summary) == tail
    assert "> a \\| b c" in summary
    assert table(summary)["Image"] == "`` r`x` ``"
