"""Recovering a lost start whatever order the builds list comes in, and however long it is.

The list's order is undocumented: the program sorts by createdAt itself, and pages (100 builds a
page, by cursor) for as long as a page may still hold a build created since the request was sent.
The start request's answer is lost (the connection resets after the API created the build), so
the program must find that build among the service's builds rather than start a second one.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from northflank_build.emulator import Emulator, PastBuild, ServiceConfig
from northflank_build.start import LIST_PAGES, LIST_PER_PAGE
from tests.conftest import FAST, MakeEmulator, api_requests, fast_world
from tests.test_faults import ADOPTED, BRANCH, LIST, POST, SHA, endpoints, new_builds, run_action


def world(history: int) -> dict[str, dict[str, ServiceConfig]]:
    """Service api with `history` concluded builds of the very commit this run builds."""
    past = [
        PastBuild("success", duration=60, age=3600 + 600 * n, sha=SHA, branch=BRANCH)
        for n in range(history)
    ]
    return fast_world(
        api=ServiceConfig("build", "https://github.com/acme/api", phases=dict(FAST), history=past)
    )


def list_queries(emulator: Emulator) -> list[dict[str, str]]:
    builds = [r for r in api_requests(emulator) if r.method == "GET" and r.path.endswith("/build")]
    return [r.query for r in builds]


@pytest.mark.parametrize("history", [30, 150])
@pytest.mark.parametrize("order", ["newest-first", "oldest-first", "shuffled"])
def test_a_lost_start_is_found_whatever_the_list_order(
    tmp_path: Path, make_emulator: MakeEmulator, order: str, history: int
) -> None:
    emulator = make_emulator(projects=world(history), list_order=order)
    emulator.add_faults(POST, ["reset-after"])
    result = run_action(tmp_path, emulator.url, {})
    assert result.code == 0, result.text
    [build] = new_builds(emulator, "api")  # adopted, not started twice
    assert result.outputs["build-id"] == build["id"]
    assert ADOPTED in result.shown
    queries = list_queries(emulator)
    assert all(q["per_page"] == str(LIST_PER_PAGE) for q in queries)
    assert all(q.get("cursor") for q in queries[1:])
    # Newest first, the first page ends before the request was sent: no later page can hold it.
    # Otherwise any page may: every page is read.
    pages = 1 if order == "newest-first" else math.ceil((history + 1) / LIST_PER_PAGE)
    assert len(queries) == pages
    assert endpoints(emulator)[: 1 + pages] == [POST] + [LIST] * pages


def test_a_search_cut_short_by_its_page_bound_starts_nothing_more(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    """The build may be on a page past the bound: sending the request again could double it."""
    history = LIST_PAGES * LIST_PER_PAGE
    emulator = make_emulator(projects=world(history), list_order="oldest-first")
    emulator.add_faults(POST, ["reset-after"])
    result = run_action(tmp_path, emulator.url, {})
    assert result.code == 3, result.text
    assert len(new_builds(emulator, "api")) == 1  # the lost one, on page LIST_PAGES + 1
    assert endpoints(emulator) == [POST] + [LIST] * LIST_PAGES
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert f"only the first {history} of the service's builds were read" in error
    assert "Check the service's builds on Northflank before starting it again" in error
    assert result.outputs["result"] == "error"
