"""Decide what to build and write the start request's body."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from northflank_build.context import CiContext, same_repository
from northflank_build.errors import InputError
from northflank_build.model import Service
from northflank_build.routes import start_build_path
from northflank_build.settings import Settings, parse_branch


@dataclass(frozen=True)
class StartRequest:
    """The start request, ready to send, and how its target was chosen."""

    path: str
    body: dict[str, Any]
    service_type: str
    origin: str
    notes: list[str] = field(default_factory=list)
    method: str = "POST"

    def redacted(self) -> dict[str, Any]:
        """{method, path, body} with every secret value replaced by ***."""
        body = json.loads(json.dumps(self.body))
        for key in ("buildFiles", "dockerSecretMounts"):
            for item in body.get("overrides", {}).get(key, {}).values():
                item["data"] = "***"
        return {"method": self.method, "path": self.path, "body": body}

    def describe(self) -> str:
        """The target in words, e.g. 'pull request #42 at 1a2b3c4'."""
        body = self.body
        if "bundleUrl" in body:
            where = "a bundle"
        elif "pullRequestId" in body:
            where = f"pull request #{body['pullRequestId']}"
        elif "branch" in body:
            where = f"branch {body['branch']}"
        else:
            where = "the linked branch"
        sha = body.get("sha")
        return f"{where} at {sha[:7]}" if sha else f"{where} (latest commit)"


@dataclass
class _Target:
    sha: str | None
    branch: str | None
    pull_request_id: int | None
    origin: str


def choose_target(
    settings: Settings, ci: CiContext, service: Service | None, warn: Callable[[str], None]
) -> _Target:
    """The commit, branch and pull request to build: the inputs, then the CI context."""
    target = _Target(settings.sha, settings.branch, settings.pull_request_id, "inputs")
    chosen_whole = settings.explicit_target & {"branch", "pull-request-id", "bundle-url"}
    if chosen_whole or not settings.ci_context or ci.system == "none":
        return target
    linked = service.repository if service else None
    if linked and ci.repository and not same_repository(linked, ci.repository):
        warn(
            f"the service builds {linked}, not this CI's repository "
            f"{ci.repository}: nothing is taken from the CI context"
        )
        return target
    if ci.refusal:
        raise InputError("ci-context", ci.refusal)
    target.origin = ci.system
    target.branch = _ci_branch(ci)
    target.pull_request_id = ci.pull_request_id
    if target.sha is None:
        target.sha = ci.sha
    return target


def _ci_branch(ci: CiContext) -> str | None:
    """The CI's branch, held to the rules of the branch input."""
    if ci.branch is None:
        return None
    try:
        return parse_branch(ci.branch)
    except ValueError as error:
        raise InputError(
            "branch", f"the branch {ci.name} gives {error}: give branch explicitly"
        ) from None


def build_body(
    settings: Settings,
    service_id: str,
    ci: CiContext,
    service: Service | None,
    warn: Callable[[str], None],
) -> StartRequest:
    """The start request for these settings, or InputError when they cannot make one.

    Every input was checked when the settings were parsed, so the body is valid: the tests hold
    every body this can build against the API's JSON Schema, schemas/start-build.json.
    """
    kind = settings.service_type
    if service is not None:
        if service.service_type == "deployment":
            raise InputError(
                "service-id",
                f"{service_id} is a deployment service, which cannot be built: "
                "give the ID of its build service or a combined service",
            )
        if service.service_type in ("combined", "build"):
            kind = service.service_type
        if service.build_source == "bundle" and not settings.bundle_url:
            raise InputError("bundle-url", f"is required: {service_id} builds from a bundle")
        if service.build_source == "git" and settings.bundle_url:
            raise InputError("bundle-url", f"cannot be used: {service_id} builds from git")
    target = choose_target(settings, ci, service, warn)
    body: dict[str, Any] = {}
    if settings.bundle_url:
        body["bundleUrl"] = settings.bundle_url
        if target.branch:
            body["branch"] = target.branch
    elif kind == "combined":
        _combined_target(settings, service_id, ci, target)
    else:
        _build_service_target(settings, ci, target, body, kind)
    if target.sha:
        body["sha"] = target.sha
    overrides = _overrides(settings)
    if overrides:
        body["overrides"] = overrides
    return StartRequest(
        path=start_build_path(settings.project_id, service_id, settings.team_id),
        body=body,
        service_type=kind,
        origin=target.origin,
        notes=list(ci.notes) if target.origin == ci.system else [],
    )


def _combined_target(settings: Settings, service_id: str, ci: CiContext, target: _Target) -> None:
    if settings.branch or settings.pull_request_id:
        name = "branch" if settings.branch else "pull-request-id"
        raise InputError(
            name,
            "cannot be used with a combined service, which builds its linked branch: "
            "remove it, or give sha to build a particular commit",
        )
    if target.origin != "inputs" and ci.is_pull_request and "sha" not in settings.explicit_target:
        raise InputError(
            "service-id",
            f"{service_id} is a combined service, which deploys what it builds: it is "
            "not built for a pull request unless sha is given explicitly",
        )


def _build_service_target(
    settings: Settings, ci: CiContext, target: _Target, body: dict[str, Any], kind: str
) -> None:
    prefer_pr = target.pull_request_id is not None and (ci.is_pull_request or not target.branch)
    if prefer_pr:
        body["pullRequestId"] = target.pull_request_id
    elif target.branch:
        body["branch"] = target.branch
    elif kind == "build":
        raise InputError(
            "branch",
            f"a build service needs a branch or a pull request to build, and the CI context "
            f"({ci.system}) gave neither: give branch or pull-request-id",
        )
    else:
        raise InputError(
            "service-type",
            "is auto but the service was not read: give service-type combined or build",
        )


def _overrides(settings: Settings) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if settings.build_arguments:
        overrides["buildArguments"] = dict(settings.build_arguments)
    if settings.build_files:
        overrides["buildFiles"] = {k: v.body() for k, v in settings.build_files.items()}
    if settings.docker_secret_mounts:
        overrides["dockerSecretMounts"] = {
            k: v.body() for k, v in settings.docker_secret_mounts.items()
        }
    docker = {
        "dockerFilePath": settings.dockerfile_path,
        "dockerWorkDir": settings.docker_work_dir,
        "dockerfileTarget": settings.dockerfile_target,
    }
    docker = {k: v for k, v in docker.items() if v is not None}
    if docker:
        overrides["docker"] = docker
    return overrides
