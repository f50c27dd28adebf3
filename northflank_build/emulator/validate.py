"""Hand-written checks of a start-build request body, following Northflank's published rules.

Git builds: sha (exactly 40 characters), branch, pullRequestId, overrides. Bundle builds:
bundleUrl (required), branch, sha (any revision string), overrides (the same object as for git).

Written independently of the client's JSON Schema on purpose: a mistake in that schema must
show up as a refused request here, not be copied.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from .answers import RequestError

GIT_KEYS = ("sha", "branch", "pullRequestId", "overrides")
BUNDLE_KEYS = ("bundleUrl", "branch", "sha", "overrides")
OVERRIDE_KEYS = ("buildArguments", "buildFiles", "dockerSecretMounts", "docker")
SECRET_KEYS = ("data", "encoding")
DOCKER_PATTERNS = {
    "dockerFilePath": r"^\/([a-zA-Z0-9-._]+\/)*[a-zA-Z0-9-._]+$",
    "dockerWorkDir": r"^\/([a-zA-Z0-9-._]+\/)*[a-zA-Z0-9-._]*$",
    "dockerfileTarget": r"^[a-zA-Z0-9-_]+$",
}


@dataclass(frozen=True)
class BuildRequest:
    """What a valid start-build body asks for."""

    branch: str | None = None
    pull_request_id: int | None = None
    sha: str | None = None
    bundle_url: str | None = None


def check_build_body(
    body: object, service_id: str, service_type: str, build_source: str
) -> BuildRequest:
    """Return what the body asks for, or raise RequestError (400; 409 for a deployment service)."""
    if service_type == "deployment":
        raise RequestError(409, f"Service {service_id} is a deployment service and cannot be built")
    if not isinstance(body, dict):
        raise RequestError(400, "Request body must be a JSON object", {"errors": []})
    problems: list[dict[str, str]] = []
    if "bundleUrl" in body:
        if build_source != "bundle":
            raise RequestError(
                400, f"Service {service_id} builds from git; bundleUrl is not accepted"
            )
        _only_keys(body, BUNDLE_KEYS, "", problems)
        if not isinstance(body["bundleUrl"], str) or not body["bundleUrl"]:
            problems.append(_problem("bundleUrl", "must be a non-empty string"))
        # A bundle's sha is any revision string, not a 40-character git sha.
        for key in ("branch", "sha"):
            _string(body, key, key, problems)
        if "overrides" in body:
            _check_overrides(body["overrides"], problems)
        _raise_if_any(problems)
        return BuildRequest(body.get("branch"), None, body.get("sha"), body["bundleUrl"])
    if build_source == "bundle":
        raise RequestError(400, f"Service {service_id} builds from a bundle; bundleUrl is required")
    _only_keys(body, GIT_KEYS, "", problems)
    if _string(body, "sha", "sha", problems) and len(body["sha"]) != 40:
        problems.append(_problem("sha", "must be exactly 40 characters"))
    _string(body, "branch", "branch", problems)
    pull_request = body.get("pullRequestId")
    if "pullRequestId" in body and (type(pull_request) is not int):
        problems.append(_problem("pullRequestId", "must be an integer"))
    if "overrides" in body:
        _check_overrides(body["overrides"], problems)
    chosen = [key for key in ("branch", "pullRequestId") if key in body]
    if service_type == "build" and len(chosen) != 1:
        problems.append(
            _problem("branch", "build services need exactly one of branch or pullRequestId")
        )
    if service_type == "combined" and chosen:
        problems.append(
            _problem(chosen[0], "combined services take neither branch nor pullRequestId")
        )
    _raise_if_any(problems)
    return BuildRequest(body.get("branch"), pull_request, body.get("sha"))


def _check_overrides(overrides: object, problems: list[dict[str, str]]) -> None:
    if not isinstance(overrides, dict):
        problems.append(_problem("overrides", "must be an object"))
        return
    _only_keys(overrides, OVERRIDE_KEYS, "overrides.", problems)
    arguments = overrides.get("buildArguments", {})
    if not isinstance(arguments, dict):
        problems.append(_problem("overrides.buildArguments", "must be an object"))
    else:
        for name, value in arguments.items():
            if not isinstance(value, str):
                problems.append(_problem(f"overrides.buildArguments.{name}", "must be a string"))
    for key in ("buildFiles", "dockerSecretMounts"):
        _check_secrets(overrides.get(key, {}), f"overrides.{key}", key == "buildFiles", problems)
    docker = overrides.get("docker", {})
    if not isinstance(docker, dict):
        problems.append(_problem("overrides.docker", "must be an object"))
        return
    _only_keys(docker, tuple(DOCKER_PATTERNS), "overrides.docker.", problems)
    for key, pattern in DOCKER_PATTERNS.items():
        where = f"overrides.docker.{key}"
        if _string(docker, key, where, problems) and not re.fullmatch(pattern, docker[key]):
            problems.append(_problem(where, f"must match {pattern}"))


def _check_secrets(
    secrets: object, where: str, absolute_paths: bool, problems: list[dict[str, str]]
) -> None:
    if not isinstance(secrets, dict):
        problems.append(_problem(where, "must be an object"))
        return
    for name, secret in secrets.items():
        entry = f"{where}.{name}"
        if absolute_paths and not name.startswith("/"):
            problems.append(_problem(entry, "file path must be absolute"))
        if not isinstance(secret, dict):
            problems.append(_problem(entry, "must be an object with data and encoding"))
            continue
        _only_keys(secret, SECRET_KEYS, f"{entry}.", problems)
        for key in SECRET_KEYS:
            if key not in secret:
                problems.append(_problem(f"{entry}.{key}", "is required"))
        if _string(secret, "data", f"{entry}.data", problems) and not _is_base64(secret["data"]):
            problems.append(_problem(f"{entry}.data", "must be base64"))
        _string(secret, "encoding", f"{entry}.encoding", problems)


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _string(data: dict[str, Any], key: str, where: str, problems: list[dict[str, str]]) -> bool:
    """True when data[key] is present and a string; records a problem when present otherwise."""
    if key not in data:
        return False
    if isinstance(data[key], str):
        return True
    problems.append(_problem(where, "must be a string"))
    return False


def _only_keys(
    data: dict[str, Any], allowed: tuple[str, ...], prefix: str, problems: list[dict[str, str]]
) -> None:
    for key in data:
        if key not in allowed:
            problems.append(_problem(f"{prefix}{key}", f"is not allowed here; allowed: {allowed}"))


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _raise_if_any(problems: list[dict[str, str]]) -> None:
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        message = f"Invalid request body: {first['field']} {first['message']}{more}"
        raise RequestError(400, message, {"errors": problems})
