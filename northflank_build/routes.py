"""The API's paths: every project route also exists under /v1/teams/{teamId}."""

from __future__ import annotations


def service_path(project_id: str, service_id: str, team_id: str | None = None) -> str:
    """The path of a service; IDs are checked by the settings, so none can alter the path."""
    team = f"/teams/{team_id}" if team_id else ""
    return f"/v1{team}/projects/{project_id}/services/{service_id}"


def start_build_path(project_id: str, service_id: str, team_id: str | None = None) -> str:
    return service_path(project_id, service_id, team_id) + "/build"
