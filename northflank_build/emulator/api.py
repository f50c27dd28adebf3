"""The /v1 routes: authentication, rate limit, routing and the answers of each endpoint.

Checks run in this order: rate limit (429), token (401), route (404), team (404), permission
(403), project and service (404), then the endpoint's own checks (400, 404, 409).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .answers import Answer, RequestError, error_answer, json_answer, refused
from .config import ServiceConfig
from .logs import envelope, parse_log_query
from .recording import RecordedRequest
from .state import World
from .validate import check_build_body

MUTATING = ("POST build", "DELETE build")
DEPLOY_PERMISSION = "Project > Services > Deployment > Deploy Build"
HOST_KINDS = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "bitbucket.org": "bitbucket",
    "dev.azure.com": "azure",
    "ssh.dev.azure.com": "azure",
}


@dataclass(frozen=True)
class Route:
    """A matched /v1 route: the fault-plan endpoint name and the ids in the path."""

    endpoint: str
    project_id: str
    service_id: str
    team_id: str | None = None
    build_id: str | None = None


def match_route(method: str, path: str) -> Route | None:
    """The route a request addresses, in either the project or the team form; None if unknown."""
    parts = path.strip("/").split("/")
    if parts[:1] != ["v1"]:
        return None
    parts = parts[1:]
    team_id = None
    if len(parts) >= 2 and parts[0] == "teams":
        team_id, parts = parts[1], parts[2:]
    if len(parts) < 4 or parts[0] != "projects" or parts[2] != "services" or "" in parts:
        return None
    project_id, service_id, rest = parts[1], parts[3], parts[4:]
    shapes = {
        ("GET", ()): "GET service",
        ("POST", ("build",)): "POST build",
        ("GET", ("build",)): "GET builds",
        ("GET", ("build", "*")): "GET build",
        ("DELETE", ("build", "*")): "DELETE build",
        ("GET", ("build-logs",)): "GET logs",
    }
    shape = tuple(rest[:1]) + (("*",) if len(rest) == 2 else ())
    endpoint = shapes.get((method, shape)) if len(rest) <= 2 else None
    if endpoint is None:
        return None
    build_id = rest[1] if len(rest) == 2 else None
    return Route(endpoint, project_id, service_id, team_id, build_id)


class Api:
    """Answers /v1 requests from the world's state."""

    def __init__(self, world: World) -> None:
        self.world = world

    def is_authorized(self, request: RecordedRequest) -> bool:
        """Whether the request's token may do what the request asks."""
        token = request.token
        config = self.world.config
        if token in config.tokens:
            return True
        return token in config.read_only_tokens and request.method == "GET"

    def rate_headers(self, request: RecordedRequest) -> dict[str, str]:
        """The x-ratelimit-* headers for the request's token, without counting it."""
        return self.world.peek_rate(request.token or "").headers()

    def answer(self, request: RecordedRequest) -> Answer:
        """Apply the request and return the API's answer, with x-ratelimit-* headers."""
        rate = self.world.count_request(request.token or "")
        headers = rate.headers()
        if rate.exceeded:
            headers["Retry-After"] = str(rate.reset_seconds)
            message = (
                f"Too many requests: the limit is {rate.limit} requests per "
                f"{self.world.config.rate_window:g} s; retry in {rate.reset_seconds} s"
            )
            return error_answer(429, message, {"retryAfter": rate.reset_seconds}, headers)
        try:
            return json_answer(200, self._serve(request), headers)
        except RequestError as error:
            return refused(error, headers)

    def _serve(self, request: RecordedRequest) -> Any:
        config = self.world.config
        token = request.token
        if token is None:
            raise RequestError(401, "Unauthorized: no API token (Authorization: Bearer <token>)")
        if token not in config.tokens and token not in config.read_only_tokens:
            raise RequestError(401, "Unauthorized: invalid API token")
        route = match_route(request.method, request.path)
        if route is None:
            raise RequestError(404, f"Route not found: {request.method} {request.path}")
        if route.team_id is not None and config.team_id not in (None, route.team_id):
            raise RequestError(404, f"Team {route.team_id} not found")
        if route.endpoint in MUTATING and token not in config.tokens:
            raise RequestError(403, f"Forbidden: missing permission {DEPLOY_PERMISSION}")
        service = self.world.service(route.project_id, route.service_id)
        return self._endpoint(route, service, request)

    def _endpoint(self, route: Route, service: ServiceConfig, request: RecordedRequest) -> Any:
        world, now = self.world, self.world.clock.now()
        project_id, service_id = route.project_id, route.service_id
        if route.endpoint == "GET service":
            builds = world.service_builds(project_id, service_id)
            latest = builds[0].status_at(now)[0] if builds else None
            return {"data": service_json(service_id, service, latest)}
        if route.endpoint == "POST build":
            body = _json_body(request.raw_body)
            wanted = check_build_body(body, service_id, service.type, service.build_source)
            build = world.start_build(project_id, service_id, wanted)
            return {"data": build.start_answer(now)}
        if route.endpoint == "GET builds":
            builds, pagination = world.list_page(project_id, service_id, request.query)
            return {"data": {"builds": [b.to_json(now) for b in builds]}, "pagination": pagination}
        if route.endpoint == "GET logs":
            query = parse_log_query(request.query, world.config.log_page_limit)
            lines, pagination = world.log_page(project_id, service_id, query)
            return {"data": envelope(lines, world.config.log_envelope), "pagination": pagination}
        build_id = route.build_id or ""
        if route.endpoint == "DELETE build":
            world.abort(project_id, service_id, build_id)
            return {"data": {}}
        return {"data": world.find_build(project_id, service_id, build_id).to_json(now)}


def service_json(service_id: str, service: ServiceConfig, build_status: str | None) -> Any:
    """The API's service object."""
    data: dict[str, Any] = {
        "id": service_id,
        "name": service.name or service_id,
        "serviceType": service.type,
        "buildSource": service.build_source,
    }
    if service.repository:
        host = (urlsplit(service.repository).hostname or "").lower()
        data["vcsData"] = {
            "projectUrl": service.repository,
            "projectType": HOST_KINDS.get(host, "self-hosted"),
            "dockerFilePath": "/Dockerfile",
            "dockerWorkDir": "/",
        }
        if service.type == "combined":
            data["vcsData"]["projectBranch"] = service.branch or "main"
    data["status"] = {"build": {"status": build_status}} if build_status else {}
    return data


def _json_body(raw: bytes) -> object:
    if not raw.strip():
        raise RequestError(400, "Request body must be a JSON object; none was sent")
    try:
        return json.loads(raw)
    except ValueError as error:
        raise RequestError(400, f"Malformed JSON body: {error}") from error
