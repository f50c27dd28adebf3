"""GitHub Actions: the event payload at GITHUB_EVENT_PATH decides what the run is about.

Pull request events build the pull request's head commit (never GitHub's merge commit in
GITHUB_SHA) and name no branch; one from a fork is refused, since a run that has the token would
build the fork's code with this repository's secrets. Pushes build GITHUB_SHA on the pushed
branch, or the tagged commit alone; merge queues build the group's commit on the queue branch;
workflow_run builds the commit of the run that triggered it; any other event builds GITHUB_SHA,
on GITHUB_REF's branch when it is one. Without a readable payload the GITHUB_* variables are
used, with a note.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from northflank_build.context.model import (
    CiContext,
    EnvReader,
    branch_from_ref,
    clean,
    commit_sha,
    pr_number,
)

PULL_REQUEST_EVENTS = frozenset(
    {
        "pull_request",
        "pull_request_target",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
    }
)


def detect_github(env: Mapping[str, str]) -> CiContext | None:
    """The context of a GitHub Actions run, or None when this is not one."""
    reader = EnvReader(env)
    if not reader.is_true("GITHUB_ACTIONS"):
        return None
    event = reader.text("GITHUB_EVENT_NAME")
    payload = _read_payload(reader)
    if event in PULL_REQUEST_EVENTS:
        context = _pull_request(event, payload, reader)
    elif event == "push":
        context = _push(payload, reader)
    elif event == "merge_group":
        context = _merge_group(payload, reader)
    elif event == "workflow_run":
        context = _workflow_run(payload, reader)
    else:
        context = _other_event(reader)
    server = (reader.text("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    name = reader.text("GITHUB_REPOSITORY") or clean(_field(payload, "repository", "full_name"))
    repository = f"{server}/{name}" if name else None
    run_id = reader.text("GITHUB_RUN_ID")
    return replace(
        context,
        repository=repository,
        run_url=f"{repository}/actions/runs/{run_id}" if repository and run_id else None,
        event=event,
        notes=tuple(reader.notes),
    )


def _read_payload(reader: EnvReader) -> dict[str, Any]:
    path = reader.text("GITHUB_EVENT_PATH")
    if path is None:
        reader.note("GITHUB_EVENT_PATH is not set; reading the GITHUB_* variables only")
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            payload = json.load(file)
    except (OSError, ValueError, RecursionError) as error:
        reader.note(f"could not read the event payload {path} ({error}); reading GITHUB_* only")
        return {}
    if not isinstance(payload, dict):
        reader.note(f"the event payload {path} is not a JSON object; reading GITHUB_* only")
        return {}
    return payload


def _field(data: object, *keys: str) -> object:
    """The value at keys inside nested JSON objects, or None where the path breaks off."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _differs(name: str | None, other: str | None) -> bool:
    """True when two owner/name full names differ; GitHub compares them case-insensitively."""
    return name is None or other is None or name.lower() != other.lower()


def _pull_request(event: str, payload: dict[str, Any], reader: EnvReader) -> CiContext:
    pull = _field(payload, "pull_request")
    if not isinstance(pull, dict):
        reader.note(
            "the event payload has no pull_request, so its head commit is unknown "
            "(GITHUB_SHA is not it); leaving the commit to Northflank"
        )
        ref = reader.text("GITHUB_REF") or ""
        number = pr_number(ref.split("/")[2]) if ref.startswith("refs/pull/") else None
        return CiContext(
            "github", pull_request_id=number, is_pull_request=True, ref_type="pull_request"
        )
    number = pr_number(pull.get("number")) or pr_number(payload.get("number"))
    sha = commit_sha(_field(pull, "head", "sha"))
    github_sha = reader.sha("GITHUB_SHA")
    if sha is not None and github_sha not in (None, sha):
        what = (
            "the base branch's commit"
            if event == "pull_request_target"
            else "GitHub's merge commit"
        )
        reader.note(f"GITHUB_SHA is {what}; building the pull request's head {sha[:7]} instead")
    head_name = clean(_field(pull, "head", "repo", "full_name"))
    base_name = clean(_field(pull, "base", "repo", "full_name")) or reader.text("GITHUB_REPOSITORY")
    fork = _differs(head_name, base_name)
    refusal = None
    if fork:
        # Applied only once the token is known to be there: without it the run stops earlier,
        # saying that GitHub withholds secrets from forks.
        what = f"pull request #{number}" if number else "a pull request"
        refusal = _fork_refusal(event, what, head_name)
    return CiContext(
        "github",
        sha=sha,
        pull_request_id=number,
        is_pull_request=True,
        ref_type="pull_request",
        fork=fork,
        refusal=refusal,
    )


def _fork_refusal(event: str, what: str, head_name: str | None) -> str:
    origin = f"the fork {head_name}" if head_name else "a fork that has since been deleted"
    if event in ("pull_request_target", "workflow_run"):
        secrets = f"A {event} workflow runs with this repository's secrets"
    else:
        secrets = (
            "This repository passes its secrets to workflows of pull requests from forks (the "
            "token is there)"
        )
    return (
        f"this {event} run is about {what} from {origin}. {secrets}, and the Northflank build "
        "would run the fork's untrusted code with this run's token, build files and secret "
        "mounts, so the CI context is not used. If you mean to build it, review its code and "
        "give pull-request-id (or branch) explicitly."
    )


def _push(payload: dict[str, Any], reader: EnvReader) -> CiContext:
    ref = reader.text("GITHUB_REF") or clean(payload.get("ref"))
    tag = ref is not None and ref.startswith("refs/tags/")
    if payload.get("deleted") is True or clean(payload.get("after")) == "0" * 40:
        reader.note(f"this push deleted {ref}; there is no commit to build")
        return CiContext("github", ref_type="tag" if tag else "branch")
    if tag:
        # For an annotated tag the payload's `after` is the tag object, not the commit.
        sha = reader.sha("GITHUB_SHA") or commit_sha(_field(payload, "head_commit", "id"))
        return CiContext("github", sha=sha, ref_type="tag")
    branch = branch_from_ref(ref)
    sha = reader.sha("GITHUB_SHA") or commit_sha(payload.get("after"))
    return CiContext("github", sha=sha, branch=branch, ref_type="branch" if branch else None)


def _merge_group(payload: dict[str, Any], reader: EnvReader) -> CiContext:
    sha = commit_sha(_field(payload, "merge_group", "head_sha")) or reader.sha("GITHUB_SHA")
    head_ref = clean(_field(payload, "merge_group", "head_ref")) or reader.text("GITHUB_REF")
    branch = branch_from_ref(head_ref)
    return CiContext("github", sha=sha, branch=branch, ref_type="branch" if branch else None)


def _workflow_run(payload: dict[str, Any], reader: EnvReader) -> CiContext:
    run = _field(payload, "workflow_run")
    if not isinstance(run, dict):
        reader.note(
            "the event payload has no workflow_run, so the triggering run's commit is unknown "
            "(GITHUB_SHA is the default branch's)"
        )
        return CiContext("github")
    sha = commit_sha(run.get("head_sha"))
    branch = clean(run.get("head_branch"))
    head_name = clean(_field(run, "head_repository", "full_name"))
    base_name = clean(_field(payload, "repository", "full_name")) or reader.text(
        "GITHUB_REPOSITORY"
    )
    fork = _differs(head_name, base_name)
    # workflow_run runs with this repository's secrets too: the same hazard as pull_request_target.
    refusal = (
        _fork_refusal("workflow_run", f"a run on {branch or 'a branch'}", head_name)
        if fork
        else None
    )
    ref_type = "branch" if branch else None
    return CiContext(
        "github", sha=sha, branch=branch, ref_type=ref_type, fork=fork, refusal=refusal
    )


def _other_event(reader: EnvReader) -> CiContext:
    ref = reader.text("GITHUB_REF")
    branch = branch_from_ref(ref)
    tag = ref is not None and ref.startswith("refs/tags/")
    ref_type = "branch" if branch else "tag" if tag else None
    return CiContext("github", sha=reader.sha("GITHUB_SHA"), branch=branch, ref_type=ref_type)
