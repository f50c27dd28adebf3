"""Turn the raw inputs into typed settings, with one clear error per bad input."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from northflank_build.errors import InputError, InputErrors
from northflank_build.files import Folders, read_file
from northflank_build.inputs import Inputs

T = TypeVar("T")

# Azure Pipelines passes `$(NAME)` on as text when NAME is not defined; shells leave `${NAME}`.
UNEXPANDED_VARIABLE = re.compile(r"\$(\([A-Za-z_][\w.]*\)|\{[A-Za-z_]\w*\})")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
SHA_PATTERN = re.compile(r"^[0-9a-fA-F]{40}$")
DURATION_PATTERN = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
KEY_VALUE_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$")
MOUNT_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
ABSOLUTE_FILE = re.compile(r"^/([^/\s]+/)*[^/\s]+$")
BEARER_PREFIX = re.compile(r"^bearer\s+", re.IGNORECASE)
API_VERSION_SUFFIX = "/v1"  # every path the program sends starts with it
# The API's own patterns for the Docker overrides (northflank-api.md).
DOCKERFILE_PATH = re.compile(r"^/([a-zA-Z0-9._-]+/)*[a-zA-Z0-9._-]+$")
DOCKER_WORK_DIR = re.compile(r"^/([a-zA-Z0-9._-]+/)*[a-zA-Z0-9._-]*$")
DOCKERFILE_TARGET = re.compile(r"^[a-zA-Z0-9_-]+$")
MAX_BRANCH = 255
MAX_SERVICES = 20  # per run: each is polled on the token's budget, and GitLab's dotenv has 5 KB
REUSE = ("never", "running", "success")
TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}
MAX_TIMEOUT = 7 * 24 * 3600.0
MIN_POLL_INTERVAL = 0.1
MAX_NESTING = 4  # levels of a YAML or JSON input; a mapping of {file: path} needs 2


@dataclass(frozen=True)
class SecretFile:
    """A build file or secret mount: its content goes to the API base64-encoded, never printed."""

    data: bytes

    def body(self) -> dict[str, str]:
        return {"data": base64.b64encode(self.data).decode("ascii"), "encoding": "utf-8"}

    def secrets(self) -> list[str]:
        """The content as text and as base64, the forms it can be printed in."""
        return [self.data.decode("utf-8", errors="replace"), self.body()["data"]]


@dataclass(frozen=True)
class Settings:
    """Every input, parsed and checked."""

    api_token: str
    project_id: str
    service_ids: tuple[str, ...]
    team_id: str | None
    api_url: str
    sha: str | None
    branch: str | None
    pull_request_id: int | None
    bundle_url: str | None
    service_type: str
    ci_context: bool
    build_arguments: dict[str, str]
    build_files: dict[str, SecretFile]
    docker_secret_mounts: dict[str, SecretFile]
    dockerfile_path: str | None
    docker_work_dir: str | None
    dockerfile_target: str | None
    wait: bool
    timeout: float
    poll_interval: float | None
    logs: str
    abort_on_cancel: bool
    abort_on_timeout: bool
    fail_on_build_failure: bool
    dry_run: bool
    reuse: str
    outputs_file: Path | None
    summary: bool
    explicit_target: frozenset[str] = field(default_factory=frozenset)

    def secrets(self) -> list[str]:
        """Every secret value: the token, and each file's content as text and as base64 (the
        console hides each line of them by the rule of masking.py)."""
        values = [self.api_token]
        for item in (*self.build_files.values(), *self.docker_secret_mounts.values()):
            values += item.secrets()
        return [v for v in dict.fromkeys(values) if v.strip()]


def parse_boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("must be true or false")


def parse_duration(text: str) -> float:
    """Seconds in `900`, `900s`, `15m`, `1h`, `1h30m`; positive and at most a week."""
    text = text.strip().lower()
    if len(text) > 30 or not text.isascii():
        raise ValueError("must be a duration such as 900, 900s, 15m, 1h or 1h30m")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        seconds = float(text)
    else:
        match = DURATION_PATTERN.fullmatch(text)
        if not text or not match:
            raise ValueError("must be a duration such as 900, 900s, 15m, 1h or 1h30m")
        hours, minutes, secs = match.groups()
        seconds = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ValueError("must be more than 0 seconds and at most 7 days")
    return seconds


def parse_poll_interval(text: str) -> float | None:
    """None for `auto`, else a fixed number of seconds."""
    if text.strip().lower() == "auto":
        return None
    try:
        seconds = float(text.strip().rstrip("s"))
    except ValueError:
        raise ValueError("must be auto or a number of seconds such as 10") from None
    if not MIN_POLL_INTERVAL <= seconds <= 3600:
        raise ValueError(f"must be auto or between {MIN_POLL_INTERVAL} and 3600 seconds")
    return seconds


def _load_mapping(text: str, *, secret: bool) -> dict[Any, Any]:
    """A YAML or JSON mapping; errors never quote the text when it is secret.

    YAML scalars are kept as written (`1:20`, `yes`, `010` stay text), as a user means them.
    Refused before anything is built: anchors and aliases (no billion laughs), tags, nesting
    deeper than MAX_NESTING, keys that are not plain text, and a key with no value (`A:`).
    """
    import yaml

    data = _load_json(text)
    if data is not None:
        _check_json(data)
    else:
        try:
            loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
            _check_yaml(yaml.parse(text, Loader=loader))
            data = yaml.load(text, Loader=loader)  # noqa: S506
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = "" if secret else f" ({getattr(error, 'problem', None) or 'syntax error'})"
            raise ValueError(f"is not valid YAML or JSON{where}{problem}") from None
    if not isinstance(data, dict):
        raise ValueError("must be a mapping (YAML or JSON), e.g. 'KEY: value'")
    if _has_lone_surrogate(data):
        raise ValueError("holds a \\u escape that is not a whole character (a lone surrogate)")
    return data


def _no_value(key: object) -> ValueError:
    return ValueError(f"key {key} has no value: write {key}: '' for an empty one")


def _check_yaml(events: Iterable[Any]) -> None:
    """Go through the YAML's events (parsed, nothing built yet) and refuse what a mapping of
    plain values never needs; ValueError naming the problem."""
    import yaml

    frames: list[list[Any]] = []  # per open collection: [is a mapping, a key is next, last key]
    for event in events:
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ValueError("uses a YAML anchor or alias (& or *): write each value out")
        if not isinstance(event, yaml.NodeEvent) and not isinstance(event, yaml.CollectionEndEvent):
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            frames.pop()
            continue
        tag = getattr(event, "tag", None)
        if tag:
            raise ValueError(f"uses the YAML tag {tag}: write plain values")
        if frames and frames[-1][0]:
            frame = frames[-1]
            if frame[1]:
                if not isinstance(event, yaml.ScalarEvent):
                    raise ValueError("has a key that is not plain text")
                frame[1], frame[2] = False, event.value
                continue
            if isinstance(event, yaml.ScalarEvent) and event.value == "" and not event.style:
                raise _no_value(frame[2])
            frame[1] = True
        if isinstance(event, yaml.CollectionStartEvent):
            if len(frames) >= MAX_NESTING:
                raise ValueError(f"is nested deeper than {MAX_NESTING} levels")
            frames.append([isinstance(event, yaml.MappingStartEvent), True, None])


def _check_json(data: Any) -> None:
    """The same limits for JSON: nesting, and a key whose value is null has none."""
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list) and depth > MAX_NESTING:
            raise ValueError(f"is nested deeper than {MAX_NESTING} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if item is None:
                    raise _no_value(key)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)


def _load_json(text: str) -> Any:
    """A JSON object, or None when the text is not one (then it is read as YAML).

    JSON goes first because YAML refuses the \\ud83d\\ude00 escapes of characters outside the
    Basic Multilingual Plane that JSON writers produce.
    """
    if not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_lone_surrogate(item) for pair in value.items() for item in pair)
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value)


def parse_build_arguments(text: str) -> dict[str, str]:
    """A mapping of string to string, from YAML/JSON or `KEY=VALUE` lines."""
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    matches = [KEY_VALUE_LINE.match(line) for line in lines]
    if lines and all(matches):
        return {m.group(1): m.group(2) for m in matches if m}
    result: dict[str, str] = {}
    for key, value in _load_mapping(text, secret=False).items():
        if not isinstance(key, str) or not key.strip() or any(c.isspace() or c == "=" for c in key):
            raise ValueError(
                f"has an invalid argument name {str(key)!r}: use letters, digits and _"
            )
        if isinstance(value, bool):
            result[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            result[key] = str(value)
        else:
            raise ValueError(f"argument {key} must be a string, not {type(value).__name__}")
    return result


def parse_secret_files(
    text: str,
    *,
    folders: Folders,
    key_check: Callable[[str], str | None],
    on_secret: Callable[[str], None] = lambda secret: None,
) -> dict[str, SecretFile]:
    """A mapping of key to inline content or to `{file: path}` (files.py says which paths).

    Every content is read, and handed to on_secret, before any key is checked: an error that
    names a key can then never show a secret unmasked.
    """
    mapping = _load_mapping(text, secret=True)
    result: dict[str, SecretFile] = {}
    unreadable: list[str] = []
    for key, value in mapping.items():
        if isinstance(value, str):
            result[key] = SecretFile(value.encode("utf-8"))
        elif isinstance(value, dict) and set(value) == {"file"} and isinstance(value["file"], str):
            try:
                result[key] = SecretFile(read_file(value["file"], folders))
            except ValueError as error:
                unreadable.append(f"{key}: {error}")
                continue
        else:
            continue
        for secret in result[key].secrets():
            on_secret(secret)
    for key in mapping:
        if not isinstance(key, str):
            raise ValueError("has a key that is not a string")
        problem = key_check(key)
        if problem:
            raise ValueError(problem)
        if key not in result and not unreadable:
            raise ValueError(f"{key} must be the content as text, or {{file: path}}")
    if unreadable:
        raise ValueError(unreadable[0])
    return result


def _build_file_key(key: str) -> str | None:
    if not ABSOLUTE_FILE.match(key):
        return f"path {key!r} must be an absolute file path, e.g. /app/.npmrc"
    return None


def _mount_key(key: str) -> str | None:
    return None if MOUNT_ID.match(key) else f"mount id {key!r} may use letters, digits, . _ -"


def parse_api_url(text: str) -> str:
    """An https:// address, or http:// on a loopback host; without credentials or query.

    A host without a scheme is taken as https://, except a loopback host, where http:// is as
    likely; a trailing /v1 is dropped, since every path the program sends starts with it.
    """
    text = text.strip()
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("contains white space or a control character")
    if "://" not in text:
        host = _host(text)
        if host is not None and is_loopback(host):
            raise ValueError(
                f"has no scheme: write http://{text} for a local server without TLS, "
                f"or https://{text}"
            )
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an address such as https://api.northflank.com")
    try:
        parts.port  # noqa: B018 (reading it checks it)
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("must not contain credentials, a query or a fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("http:// is only allowed for a loopback host; use https://")
    path = parts.path.rstrip("/")
    path = path.removesuffix(API_VERSION_SUFFIX) if path.endswith(API_VERSION_SUFFIX) else path
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


def _host(text: str) -> str | None:
    """The host of an address written without a scheme, or None when it has none."""
    try:
        return urlsplit("//" + text).hostname
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_token(text: str) -> str:
    """The token alone: a `Bearer ` copied with it from an Authorization header is dropped."""
    token = BEARER_PREFIX.sub("", text.strip(), count=1)
    if UNEXPANDED_VARIABLE.fullmatch(token):
        raise ValueError(
            f"is the text {token}: the CI left a variable reference unexpanded, so the secret is "
            "not defined for this run (or not passed to this step)"
        )
    if any(c.isspace() for c in token):
        raise ValueError("contains white space or a line break; copy the token again")
    if not all("!" <= c <= "~" for c in token):
        raise ValueError("contains a character that is not printable ASCII; copy the token again")
    return token


def parse_service_ids(text: str) -> tuple[str, ...]:
    """One or more service IDs, one per line or separated by commas; each once."""
    ids = [part.strip() for line in text.splitlines() for part in line.split(",")]
    ids = [parse_id(part) for part in ids if part]
    if not ids:
        raise ValueError("give the build or combined service ID")
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"names {', '.join(repeated)} more than once: give each service once")
    if len(ids) > MAX_SERVICES:
        raise ValueError(f"names {len(ids)} services: give at most {MAX_SERVICES} in one step")
    return tuple(ids)


def parse_id(text: str) -> str:
    value = text.strip()
    if not ID_PATTERN.match(value):
        raise ValueError("may contain only letters, digits, - and _")
    return value


def parse_sha(text: str) -> str:
    value = text.strip()
    if not SHA_PATTERN.match(value):
        raise ValueError("must be a full commit SHA of 40 hexadecimal characters")
    return value.lower()


def parse_revision(text: str) -> str:
    """A bundle's revision: any text on one line, kept as written (the API takes any string)."""
    value = text.strip()
    if not value or not value.isprintable():
        raise ValueError("must be the bundle's revision on one line, e.g. a commit SHA or v1.2.0")
    return value


def parse_pull_request_id(text: str) -> int:
    value = text.strip().lstrip("#")
    if not value.isdigit() or int(value) <= 0:
        raise ValueError("must be a pull request number such as 42")
    return int(value)


def parse_branch(text: str) -> str:
    value = text.strip().removeprefix("refs/heads/")
    if not value or any(ord(c) < 32 or c in " ~^:?*[\\" for c in value):
        raise ValueError("is not a valid branch name")
    if len(value) > MAX_BRANCH:
        raise ValueError(f"is longer than {MAX_BRANCH} characters")
    return value


def parse_pattern(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    """A parser of text that must match pattern, `what` saying in words what it must be."""

    def parse(text: str) -> str:
        value = text.strip()
        if not pattern.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return parse


def parse_bundle_url(text: str) -> str:
    value = text.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an http(s) URL of the bundle")
    return value


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return value

    return parse


def parse_outputs_file(text: str) -> Path:
    path = Path(text.strip())
    if not path.parent.is_dir():
        raise ValueError(f"folder {path.parent} does not exist")
    if path.is_dir():
        raise ValueError(f"{path} is a folder: give a file name such as {path / 'outputs.json'}")
    return path


class _Reader:
    """Parses inputs one by one and collects every error instead of stopping at the first."""

    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.errors: list[InputError] = []

    def get(self, name: str, parse: Callable[[str], T], fallback: T) -> T:
        text = self.inputs.value(name)
        try:
            return parse(text)
        except ValueError as error:
            source = self.inputs.source(name)
            # Name the variable only where the user set it by that name.
            plain = source in ("default", f"--{name}") or source.startswith("INPUT_")
            origin = "" if plain else f" (from {source})"
            self.errors.append(InputError(f"{name}{origin}", str(error)))
            return fallback

    def optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        if not self.inputs.value(name).strip():
            return None
        return self.get(name, parse, None)

    def required(self, name: str, parse: Callable[[str], T], fallback: T, hint: str) -> T:
        if not self.inputs.value(name).strip():
            self.errors.append(InputError(name, f"is required: {hint}"))
            return fallback
        return self.get(name, parse, fallback)


def parse_settings(
    inputs: Inputs,
    env: Mapping[str, str],
    *,
    token_hint: str = "",
    on_secret: Callable[[str], None] = lambda secret: None,
) -> Settings:
    """Settings from the inputs, or InputErrors naming every bad input.

    on_secret receives each secret of build-files and docker-secret-mounts as soon as it is read,
    before any error about them is made.
    """
    folders = Folders.from_env(env)
    read = _Reader(inputs)
    token_help = token_hint or _token_help(inputs, env)
    bundle = bool(inputs.value("bundle-url").strip())

    def files(key_check: Callable[[str], str | None]) -> Callable[[str], dict[str, SecretFile]]:
        return lambda text: parse_secret_files(
            text, folders=folders, key_check=key_check, on_secret=on_secret
        )

    settings = Settings(
        api_token=read.required("api-token", parse_token, "", token_help),
        project_id=read.required("project-id", parse_id, "", "give the Northflank project ID"),
        service_ids=read.required(
            "service-id", parse_service_ids, (), "give the build or combined service ID"
        ),
        team_id=read.optional("team-id", parse_id),
        api_url=read.get("api-url", parse_api_url, ""),
        sha=read.optional("sha", parse_revision if bundle else parse_sha),
        branch=read.optional("branch", parse_branch),
        pull_request_id=read.optional("pull-request-id", parse_pull_request_id),
        bundle_url=read.optional("bundle-url", parse_bundle_url),
        service_type=read.get("service-type", parse_choice("auto", "combined", "build"), "auto"),
        ci_context=read.get("ci-context", parse_boolean, True),
        build_arguments=read.optional("build-arguments", parse_build_arguments) or {},
        build_files=read.optional("build-files", files(_build_file_key)) or {},
        docker_secret_mounts=read.optional("docker-secret-mounts", files(_mount_key)) or {},
        dockerfile_path=read.optional(
            "dockerfile-path",
            parse_pattern(
                DOCKERFILE_PATH,
                "an absolute path in the repository such as /Dockerfile or /docker/app.Dockerfile",
            ),
        ),
        docker_work_dir=read.optional(
            "docker-work-dir",
            parse_pattern(
                DOCKER_WORK_DIR, "an absolute folder in the repository such as / or /services/api"
            ),
        ),
        dockerfile_target=read.optional(
            "dockerfile-target",
            parse_pattern(DOCKERFILE_TARGET, "a build stage name of letters, digits, - and _"),
        ),
        wait=read.get("wait", parse_boolean, True),
        timeout=read.get("timeout", parse_duration, 1800.0),
        poll_interval=read.get("poll-interval", parse_poll_interval, None),
        logs=read.get("logs", parse_choice("on-failure", "follow", "off"), "on-failure"),
        abort_on_cancel=read.get("abort-on-cancel", parse_boolean, True),
        abort_on_timeout=read.get("abort-on-timeout", parse_boolean, False),
        fail_on_build_failure=read.get("fail-on-build-failure", parse_boolean, True),
        dry_run=read.get("dry-run", parse_boolean, False),
        reuse=read.get("reuse", parse_choice(*REUSE), "never"),
        outputs_file=read.optional("outputs-file", parse_outputs_file),
        summary=read.get("summary", parse_boolean, True),
        explicit_target=frozenset(
            n for n in ("sha", "branch", "pull-request-id", "bundle-url") if inputs.explicit(n)
        ),
    )
    if settings.branch and settings.pull_request_id:
        read.errors.append(
            InputError("branch", "and pull-request-id were both given: give only one of them")
        )
    if settings.bundle_url and settings.pull_request_id:
        read.errors.append(
            InputError("pull-request-id", "cannot be used with bundle-url: give branch or nothing")
        )
    if read.errors:
        raise InputErrors(read.errors)
    return settings


def _token_help(inputs: Inputs, env: Mapping[str, str]) -> str:
    """Where the token goes, in the form this run gives its inputs."""
    reference = "${{ secrets.NORTHFLANK_API_TOKEN }}"  # what a workflow writes, not a secret
    if inputs.style == "action":
        return f"set it from a secret: with: api-token: {reference}"
    if env.get("GITHUB_ACTIONS") == "true":
        return f"set it from a secret: env: NORTHFLANK_API_TOKEN: {reference}"
    return "set NORTHFLANK_API_TOKEN from the CI's secret store"
