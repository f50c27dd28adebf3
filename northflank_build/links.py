"""Addresses a user can follow from the run: the service on Northflank's dashboard, and the commit
and the pull (or merge) request on the code host. Pure: text in, text out, no network.

Only what is known is linked (northflank-api.md): Northflank's dashboard names a service as
/t/{team}/project/{project}/services/{service}, so a link needs the team (team-id) and the API of
Northflank itself; the address of a single build's page is not published, so a build is linked to
its service's list of builds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

# The dashboard of each API whose dashboard is known.
DASHBOARDS = {"https://api.northflank.com": "https://app.northflank.com"}
_SCP_LIKE = re.compile(r"(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)")
_COMMIT = re.compile(r"[0-9a-f]{40}")
# Known hosts of each kind; elsewhere the kind comes from Northflank's projectType or the CI.
_HOSTS = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "bitbucket.org": "bitbucket",
    "dev.azure.com": "azure",
}
_KINDS = frozenset({"github", "gitlab", "bitbucket", "azure"})
# The path of a commit and of a pull request under a repository's web address, per kind.
_COMMIT_PATHS = {
    "github": "commit",
    "gitlab": "-/commit",
    "bitbucket": "commits",
    "azure": "commit",
}
_CHANGE_PATHS = {
    "github": "pull",
    "gitlab": "-/merge_requests",
    "bitbucket": "pull-requests",
    "azure": "pullrequest",
}


def service_url(api_url: str, team_id: str | None, project_id: str, service_id: str) -> str | None:
    """The service's page on Northflank's dashboard; None without a team or a known dashboard."""
    dashboard = DASHBOARDS.get(api_url.rstrip("/"))
    if dashboard is None or not team_id:
        return None
    parts = (team_id, project_id, service_id)
    team, project, service = (quote(part, safe="") for part in parts)
    return f"{dashboard}/t/{team}/project/{project}/services/{service}"


def builds_url(service: str | None) -> str | None:
    """The service's list of builds: the nearest page to a build whose own page is not known."""
    return f"{service}/builds" if service else None


@dataclass(frozen=True)
class CodeHost:
    """Where the built repository lives: its kind (github, gitlab, bitbucket, azure, or "" when
    unknown) and its web address."""

    kind: str = ""
    web: str | None = None

    def change(self, number: int) -> str:
        """A pull request in the host's own words: GitLab's are merge requests, !7."""
        return f"merge request !{number}" if self.kind == "gitlab" else f"pull request #{number}"

    def commit_url(self, sha: str) -> str | None:
        path = _COMMIT_PATHS.get(self.kind)
        if not self.web or path is None or not _COMMIT.fullmatch(sha):
            return None
        return f"{self.web}/{path}/{sha}"

    def change_url(self, number: int) -> str | None:
        path = _CHANGE_PATHS.get(self.kind)
        if not self.web or path is None:
            return None
        return f"{self.web}/{path}/{number}"


def code_host(repository: str | None, *hints: str | None) -> CodeHost:
    """The code host of a repository reference (https URL, git@host:owner/name, ssh://...).

    Its kind is the first of: a known host name, then the hints in order (Northflank's
    projectType of the service, the CI system that runs the build), each taken when it names a
    kind of code host.
    """
    web = web_address(repository) if repository else None
    host = urlsplit(web).hostname if web else None
    kind = _HOSTS.get(host or "", "")
    if not kind and host and host.endswith(".visualstudio.com"):
        kind = "azure"
    if not kind:
        kind = next((h for h in hints if h in _KINDS), "") or ""
    return CodeHost(kind, web)


def web_address(repository: str) -> str | None:
    """The https address of a repository reference, without credentials, port or .git."""
    text = repository.strip()
    if "://" in text:
        try:
            parts = urlsplit(text)
            host, path = parts.hostname or "", parts.path
        except ValueError:
            return None
    elif scp := _SCP_LIKE.fullmatch(text):
        host, path = scp["host"], scp["path"]
    else:
        host, _, path = text.partition("/")
    path = path.strip("/").removesuffix(".git").strip("/")
    if not host or not path or any(c.isspace() for c in host + path):
        return None
    return f"https://{host.lower()}/{path}"
