"""The CI context record, and the rules every detector applies to the values it reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

_SHA = re.compile(r"[0-9a-f]{40}")
_NULL_SHA = "0" * 40
_DIGITS = re.compile(r"[0-9]+")
_SCP_LIKE = re.compile(r"(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>.+)")


SYSTEM_NAMES = {
    "github": "GitHub Actions", "gitlab": "GitLab CI", "circleci": "CircleCI",
    "bitbucket": "Bitbucket Pipelines", "azure": "Azure Pipelines", "buildkite": "Buildkite",
    "travis": "Travis CI", "woodpecker": "Woodpecker", "drone": "Drone",
    "codebuild": "AWS CodeBuild", "cloudbuild": "Google Cloud Build", "jenkins": "Jenkins",
    "none": "no CI system",
}  # fmt: skip


@dataclass(frozen=True)
class CiContext:
    """Which commit, branch and pull request a CI run is about, as far as the CI tells."""

    system: str
    sha: str | None = None
    branch: str | None = None
    pull_request_id: int | None = None
    is_pull_request: bool = False
    repository: str | None = None
    event: str | None = None
    ref_type: str | None = None
    fork: bool = False
    refusal: str | None = None
    run_url: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The CI system's name as its users know it."""
        return SYSTEM_NAMES.get(self.system, self.system)


def clean(value: object) -> str | None:
    """The value without surrounding white space; None when absent, blank, not text or "false"."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    # Buildkite and Travis say "false" where there is no pull request.
    if not text or text.lower() == "false":
        return None
    return text


def commit_sha(value: object) -> str | None:
    """The value as a 40-character lowercase commit SHA; None for anything else ("HEAD", zeros)."""
    text = clean(value)
    if text is None:
        return None
    text = text.lower()
    return text if _SHA.fullmatch(text) and text != _NULL_SHA else None


def pr_number(value: object) -> int | None:
    """The value as a positive pull request number (an int or a string of digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    text = clean(value)
    if text is None or not _DIGITS.fullmatch(text):
        return None
    return int(text) or None


def branch_from_ref(ref: str | None) -> str | None:
    """The branch name in a `refs/heads/<name>` ref (slashes kept), else None."""
    if ref is None or not ref.startswith("refs/heads/"):
        return None
    return clean(ref.removeprefix("refs/heads/"))


def short_branch(value: str | None) -> str | None:
    """A branch given either as `refs/heads/<name>` or as a bare name; None for other refs."""
    if value is None:
        return None
    if value.startswith("refs/"):
        return branch_from_ref(value)
    return value


def kind_of_run(is_pull_request: bool, tag: str | None, branch: str | None) -> str | None:
    """The ref_type for a run: "pull_request", "tag", "branch", or None when none is known."""
    if is_pull_request:
        return "pull_request"
    if tag is not None:
        return "tag"
    return "branch" if branch is not None else None


def event_of_run(is_pull_request: bool, tag: str | None) -> str:
    """An event name for CI systems that have none: "pull_request", "tag" or "push"."""
    if is_pull_request:
        return "pull_request"
    return "tag" if tag is not None else "push"


class EnvReader:
    """Reads CI variables by the rules above, noting each value it has to ignore."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.notes: list[str] = []

    def text(self, *names: str) -> str | None:
        """The first of the named variables that has a value."""
        for name in names:
            value = clean(self.env.get(name))
            if value is not None:
                return value
        return None

    def sha(self, *names: str) -> str | None:
        """The first of the named variables that holds a commit SHA."""
        for name in names:
            raw = clean(self.env.get(name))
            if raw is None:
                continue
            sha = commit_sha(raw)
            if sha is not None:
                return sha
            self.note(f"{name} is {raw!r}, not a 40-character commit SHA; ignored")
        return None

    def number(self, *names: str) -> int | None:
        """The first of the named variables that holds a positive pull request number."""
        for name in names:
            raw = clean(self.env.get(name))
            if raw is None:
                continue
            number = pr_number(raw)
            if number is not None:
                return number
            self.note(f"{name} is {raw!r}, not a pull request number; ignored")
        return None

    def is_true(self, name: str) -> bool:
        """True when the variable says true, in any letter case."""
        return self.env.get(name, "").strip().lower() == "true"

    def note(self, text: str) -> None:
        """Keep a one-line explanation for the user."""
        self.notes.append(text)


def _repository_key(reference: str) -> str | None:
    text = reference.strip()
    if "://" in text:
        parts = urlsplit(text)
        host, path = parts.hostname or "", parts.path
    elif scp := _SCP_LIKE.fullmatch(text):
        host, path = scp["host"], scp["path"]
    else:
        host, _, path = text.partition("/")
        host = host.rpartition("@")[2].partition(":")[0]
    path = path.strip("/").removesuffix(".git").strip("/")
    if not host or not path:
        return None
    return f"{host}/{path}".lower()


def same_repository(a: str, b: str) -> bool:
    """True when two repository references (https URL, ssh git@host:owner/name(.git),
    host/owner/name) name the same repository; case-insensitive host and path, ignores .git
    suffix, trailing slash, credentials and port."""
    key = _repository_key(a)
    return key is not None and key == _repository_key(b)
