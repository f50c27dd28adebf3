"""The job summary: written by the program end to end, then parsed and checked field by field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from northflank_build.links import code_host
from northflank_build.logs import failure_lines
from northflank_build.model import Build
from northflank_build.report import SUMMARY_LIMIT, BuildOutcome, Outcome, outputs, summary_markdown
from tests.conftest import PROJECT, TOKEN, MakeEmulator
from tests.runner import EVENTS, Result, github_env, run


def action(
    tmp_path: Path,
    url: str,
    service: str,
    event: str,
    inputs: dict[str, str] | None = None,
    **github: str,
) -> Result:
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": service,
        "api-url": url,
        "poll-interval": "0.1",
        "timeout": "60",
        **(inputs or {}),
    }
    env = github_env(tmp_path, values, event_name=event, event=f"{event}.json", extra=github)
    return run(env, tmp=tmp_path)


def table(summary: str) -> dict[str, str]:
    """The summary's two-column table as a mapping of field to value; its header row is the
    first field, so that no empty row heads it."""
    lines = summary.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("| "))
    assert lines[start + 1] == "|:--|:--|", "a table's second line is its delimiter row"
    rows = re.findall(r"^\| (.+?) \| (.*) \|$", summary, flags=re.MULTILINE)
    assert all(name.strip() and value.strip() for name, value in rows), rows
    return dict(rows)


def highlights(summary: str) -> tuple[str, list[str]] | None:
    """The title and lines of the block that explains the ending, or None when there is none."""
    match = re.search(r"\n\n([^\n]+:)\n\n(`{3,})text\n(.*?)\n\2\n", summary, flags=re.DOTALL)
    return (match.group(1), match.group(3).split("\n")) if match else None


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
        "Commit": f"[`{push['after'][:7]}`](<https://github.com/acme/api/commit/{push['after']}>)",
        "Branch": f"`{push['ref'].removeprefix('refs/heads/')}`",
        "Duration": f"{result.outputs['duration-seconds']}s",
        "Image": f"`{build['registry']['uri']}`",
        "API requests": result.outputs["api-requests"],
    }
    # The result once, in words, and the status not again beside it.
    assert result.summary.startswith("### ✅ Northflank build succeeded\n")
    assert "SUCCESS" not in result.summary
    assert "> Image successfully built" in result.summary
    assert log_block(result.summary) is None
    assert highlights(result.summary) is None
    assert "[This CI run](<https://github.com/acme/api/actions/runs/1234>)" in result.summary
    assert "team-id" not in result.summary  # the emulator's dashboard is unknown: no note
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
    head, number = payload["pull_request"]["head"]["sha"], payload["pull_request"]["number"]
    assert fields["Build"] == f"`{build['id']}`"
    assert fields["Commit"] == f"[`{head[:7]}`](<https://github.com/acme/api/commit/{head}>)"
    assert fields["Pull request"] == f"[\\#{number}](<https://github.com/acme/api/pull/{number}>)"
    assert re.fullmatch(r"\d+s", fields["Duration"])
    # The image a failed build would have had does not exist.
    assert "Image" not in fields
    assert result.summary.startswith("### ❌ Northflank build failed\n")
    assert "> Build failed at step 7/9 (RUN npm test)" in result.summary
    whole = [line["log"] for line in emulator.log_lines(PROJECT, "api-fails", build["id"])]
    assert log_block(result.summary) == whole[-100:]
    # The lines that explain the failure come first, the long log after them, collapsed.
    explained = highlights(result.summary)
    assert explained == ("The log lines that explain the failure:", failure_lines(whole[-100:]))
    assert result.summary.index(explained[1][-1]) < result.summary.index("<details>")


def test_summary_of_a_timed_out_build(tmp_path: Path, make_emulator: MakeEmulator) -> None:
    emulator = make_emulator()
    push = json.loads((EVENTS / "push.json").read_text(encoding="utf-8"))
    github = {"GITHUB_SHA": push["after"], "GITHUB_REF": push["ref"]}
    result = action(tmp_path, emulator.url, "api-slow", "push", {"timeout": "30"}, **github)
    assert result.code == 4, result.text
    [build] = emulator.builds(PROJECT, "api-slow")
    assert result.summary.startswith(
        "### ⏱️ Timed out waiting for the Northflank build, still BUILDING\n"
    )
    fields = table(result.summary)
    assert "Image" not in fields
    assert "Duration" not in fields  # it has not concluded
    whole = [line["log"] for line in emulator.log_lines(PROJECT, "api-slow", build["id"])]
    shown = log_block(result.summary)
    assert shown is not None
    assert highlights(result.summary) == (
        "The last lines of the log when the time ran out:",
        shown[-5:],
    )
    first = whole.index(shown[0])
    assert shown == whole[first : first + len(shown)]


def test_summary_links_the_service_on_northflank_given_team_id(tmp_path: Path) -> None:
    inputs = {"team-id": "acme", "service-type": "build", "dry-run": "true", "branch": "main"}
    result = action(tmp_path, "https://api.northflank.com", "api", "push", inputs)
    assert result.code == 0, result.text
    page = f"https://app.northflank.com/t/acme/project/{PROJECT}/services/api"
    assert result.outputs["service-url"] == page
    assert table(result.summary)["Service"] == f"[`api`](<{page}>)"
    assert result.summary.startswith("### 📝 Dry run: no Northflank build was started\n")
    assert "Give team-id" not in result.summary


def test_summary_says_what_would_link_the_service(tmp_path: Path) -> None:
    inputs = {"service-type": "build", "dry-run": "true", "branch": "main"}
    result = action(tmp_path, "https://api.northflank.com", "api", "push", inputs)
    assert result.code == 0, result.text
    assert result.outputs["service-url"] == ""
    assert table(result.summary)["Service"] == "`api`"
    assert "Give team-id to link the service on Northflank" in result.summary
    assert "(team-id: your-team)" in result.summary  # as this run gives its inputs: with:


def test_a_gitlab_merge_request_is_named_and_linked_as_one() -> None:
    build = Build.parse({"id": "b-1", "status": "SUCCESS", "concluded": True, "success": True,
                         "sha": "a" * 40, "pullRequestId": 7})  # fmt: skip
    host = code_host("git@gitlab.com:acme/api.git")
    item = BuildOutcome("api", "success", {}, build=build, code_host=host)
    result = Outcome((item,), 3)
    fields = table(summary_markdown(result, outputs(result)))
    assert fields["Merge request"] == "[!7](<https://gitlab.com/acme/api/-/merge_requests/7>)"
    assert fields["Commit"] == f"[`aaaaaaa`](<https://gitlab.com/acme/api/-/commit/{'a' * 40}>)"


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
    assert table(summary)["Service"] == "`api`"


def test_log_lines_and_api_values_cannot_break_the_markdown() -> None:
    tail = ["```", "</details>", "| a | b |", "````` five"]
    summary = summary_markdown(*outcome(tail, message="a | b\nc", sha="`x`"))
    assert log_block(summary) == tail
    assert "> a \\| b c" in summary
    assert table(summary)["Commit"] == "`` `x` ``"
