"""What the emulator serves: tokens, limits, projects, services and their build behaviour.

A config file (YAML or JSON, chosen by its extension) maps onto these dataclasses; every key is
optional and unknown keys are refused so a typo does not go unnoticed::

    token: demo-token               # one token or a list of tokens with full access
    read_only_tokens: [viewer]      # tokens that may read but not start or abort builds
    team_id: acme                   # if set, /v1/teams/{teamId}/... accepts only this team
    rate_limit: 1000                # requests per token per window, shared by every service
    rate_window: 3600               # seconds; a token's window starts at its first request
    log_page_limit: 100             # most lines one build-logs answer holds
    log_window: 1800                # seconds a log range covers when only one end is given
    log_envelope: list              # list | logs | data | unknown: the shape of a logs answer
    list_order: newest-first        # newest-first | oldest-first | shuffled: the builds list
    projects:                       # without it: the default world (see default_projects)
      demo-project:
        web:
          name: Web                 # the service's display name (default: its id)
          type: combined            # combined | build | deployment
          repository: https://github.com/acme/web
          branch: main              # a combined service's linked branch
          build_source: git         # git | bundle
          # success | failure | crash | aborted | unschedulable | submission-failure, or a list
          # of them cycled build after build (builds started through the API only)
          outcome: success
          phases: {PENDING: 0.5, CLONING: 0.8, BUILDING: 2.0, UPLOADING: 0.7}  # seconds
          log_lines_per_phase: 12
          history:                  # concluded builds the list endpoint returns
            # keys: outcome, duration, age (seconds), sha, branch, pull_request_id
            - {outcome: success, duration: 95, branch: main, age: 86400}
          external_builds:          # builds nobody started through the API ("build latest")
            # keys: sha, branch, pull_request_id, outcome, elapsed, duration (seconds)
            - {sha: 4f1c..., branch: main, outcome: success, elapsed: 1.5}
    faults:                         # endpoint -> fault strings, see faults.py
      POST build: [reset-after, ok]

Statuses. A start answer always says PENDING (not concluded), as the API's example does. Then a
build passes through its phases in this order: the waiting ones (PENDING, QUEUED, STARTING), then
IN_PROGRESS, CLONING, BUILDING, UPLOADING. `phases` gives each one's seconds: of the waiting
phases, those named (PENDING alone, 0.5 s, when none is); IN_PROGRESS only when named; CLONING,
BUILDING and UPLOADING always, a phase left out keeping its default. A 0 s phase is never seen.
How a build ends (`outcome`): success ends SUCCESS after UPLOADING; failure (FAILURE), crash
(CRASHED) and aborted (ABORTED, as by someone on the dashboard) end after BUILDING;
unschedulable (UNSCHEDULABLE) and submission-failure (SUBMISSION_FAILURE) end after the waiting
phases. Only SUCCESS has success true. Each phase logs log_lines_per_phase lines in bursts of up
to 10 lines sharing one timestamp, spread over the phase (a 0 s phase logs them all at once).

History builds take their phases' proportions stretched to `duration`; `age` is how many seconds
before the emulator started they were created. External builds run the service's phases (or
those stretched to `duration`) and were created `elapsed` seconds before the emulator started:
a running build of that sha, branch or pull request that the client did not start. Both survive
a reset. A sha of a git service must be 40 characters; a bundle's revision is any string.

Logs. A range with startTime and no endTime covers log_window seconds from startTime (the
official CLI's 30 minutes); with endTime alone, log_window seconds up to it; with neither, the
last log_window seconds; `duration` replaces log_window. A range with more lines than one answer
holds answers `pagination: {hasNextPage: true, cursor}`; asking again with that cursor goes on
where the answer ended. log_envelope: list answers {"data": [lines]} (the documented form), logs
{"data": {"logs": [lines]}}, data {"data": {"data": [lines]}} (both recorded by the Python SDK's
author), unknown {"data": {"entries": [lines]}} (a form no client knows).

Listing builds: per_page 1-100 (default 50), page, cursor; list_order newest-first, oldest-first,
or shuffled (a fixed pseudo-random order, never with the newest build first).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, cast

from .faults import Fault, check_endpoint

ServiceType = Literal["combined", "build", "deployment"]
BuildSource = Literal["git", "bundle"]
Outcome = Literal["success", "failure", "crash", "aborted", "unschedulable", "submission-failure"]
LogEnvelope = Literal["list", "logs", "data", "unknown"]
ListOrder = Literal["newest-first", "oldest-first", "shuffled"]

WAITING_PHASES = ("PENDING", "QUEUED", "STARTING")
PHASES = (*WAITING_PHASES, "IN_PROGRESS", "CLONING", "BUILDING", "UPLOADING")
WORK_PHASES = ("CLONING", "BUILDING", "UPLOADING")  # always run, defaults when left out
DEFAULT_PHASES = {"PENDING": 0.5, "CLONING": 0.8, "BUILDING": 2.0, "UPLOADING": 0.7}
SERVICE_TYPES = ("combined", "build", "deployment")
BUILD_SOURCES = ("git", "bundle")
OUTCOMES = ("success", "failure", "crash", "aborted", "unschedulable", "submission-failure")
LOG_ENVELOPES = ("list", "logs", "data", "unknown")
LIST_ORDERS = ("newest-first", "oldest-first", "shuffled")
DEFAULT_TOKEN = "demo-token"  # noqa: S105 (a published demo token, not a secret)


class ConfigError(ValueError):
    """A config (file or dataclass) that the emulator cannot serve; the message names the key."""


def _check_outcome(outcome: str, where: str) -> None:
    if outcome not in OUTCOMES:
        raise ConfigError(f"{where} {outcome!r} is not one of {OUTCOMES}")


def _check_ref(sha: str | None, pull_request_id: int | None, where: str) -> None:
    if sha is not None and not isinstance(sha, str):
        raise ConfigError(f"{where} sha must be a string")
    if pull_request_id is not None and type(pull_request_id) is not int:
        raise ConfigError(f"{where} pull_request_id must be an integer")


@dataclass
class PastBuild:
    """A build that concluded before the emulator started, listed as part of a service's history."""

    outcome: Outcome = "success"
    duration: float = 90.0
    age: float = 3600.0
    sha: str | None = None
    branch: str | None = None
    pull_request_id: int | None = None

    def __post_init__(self) -> None:
        _check_outcome(self.outcome, "history outcome")
        if self.duration < 0 or self.age < self.duration:
            raise ConfigError("history entries need 0 <= duration <= age (seconds)")
        _check_ref(self.sha, self.pull_request_id, "history")


@dataclass
class ExternalBuild:
    """A build the client did not start (Northflank's "build latest", a push trigger).

    Created `elapsed` seconds before it is added (when the emulator starts, for a config entry);
    it runs the service's phases, or those stretched to `duration` seconds.
    """

    sha: str | None = None
    branch: str | None = None
    pull_request_id: int | None = None
    outcome: Outcome = "success"
    elapsed: float = 0.0
    duration: float | None = None

    def __post_init__(self) -> None:
        _check_outcome(self.outcome, "external build outcome")
        if self.elapsed < 0 or (self.duration is not None and self.duration < 0):
            raise ConfigError("external builds need elapsed >= 0 and duration >= 0 (seconds)")
        _check_ref(self.sha, self.pull_request_id, "external build")


@dataclass
class ServiceConfig:
    """One service: its kind, its linked repository and how its builds behave."""

    type: ServiceType = "combined"
    repository: str | None = None
    branch: str | None = None
    build_source: BuildSource = "git"
    outcome: Outcome | list[Outcome] = "success"
    phases: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PHASES))
    log_lines_per_phase: int = 12
    history: list[PastBuild] = field(default_factory=list)
    name: str | None = None
    external_builds: list[ExternalBuild] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.type not in SERVICE_TYPES:
            raise ConfigError(f"service type {self.type!r} is not one of {SERVICE_TYPES}")
        if self.build_source not in BUILD_SOURCES:
            raise ConfigError(f"build_source {self.build_source!r} is not one of {BUILD_SOURCES}")
        outcomes = self.outcome if isinstance(self.outcome, list) else [self.outcome]
        if not outcomes or any(o not in OUTCOMES for o in outcomes):
            raise ConfigError(f"outcome {self.outcome!r} must be one or more of {OUTCOMES}")
        self.phases = lifecycle(self.phases)
        if self.log_lines_per_phase < 0:
            raise ConfigError("log_lines_per_phase must be zero or more")
        for key, builds in (("history", self.history), ("external_builds", self.external_builds)):
            for build in builds:
                try:
                    self.check_sha(build.sha)
                except ConfigError as error:
                    raise ConfigError(f"{key}: {error}") from None

    def check_sha(self, sha: str | None) -> None:
        """ConfigError unless sha suits this service: 40 characters for git, any for bundles."""
        if sha is not None and self.build_source == "git" and len(sha) != 40:
            raise ConfigError(f"sha {sha!r} must be 40 characters for a git service")

    def outcome_of(self, build_number: int) -> Outcome:
        """The outcome of this service's build_number-th build (0-based), cycling the list."""
        if isinstance(self.outcome, list):
            return self.outcome[build_number % len(self.outcome)]
        return self.outcome


def lifecycle(phases: Mapping[str, float]) -> dict[str, float]:
    """The phases a build passes through, in order, with their seconds (see the module doc)."""
    given = {str(key).upper(): float(value) for key, value in phases.items()}
    unknown = sorted(set(given) - set(PHASES))
    if unknown or any(not value >= 0 for value in given.values()):
        raise ConfigError(f"phases take non-negative seconds for {PHASES}, got {dict(phases)}")
    waiting = {phase: given[phase] for phase in WAITING_PHASES if phase in given}
    return {
        **(waiting or {"PENDING": DEFAULT_PHASES["PENDING"]}),
        **({"IN_PROGRESS": given["IN_PROGRESS"]} if "IN_PROGRESS" in given else {}),
        **{phase: given.get(phase, DEFAULT_PHASES[phase]) for phase in WORK_PHASES},
    }


def default_projects() -> dict[str, dict[str, ServiceConfig]]:
    """The default world: project demo-project with services web, api, runtime and bundle."""
    # Past builds as long as the builds the default phases give (4 s), so that a client's poll
    # schedule learns from them what it will see.
    web_history = [
        PastBuild("success", duration=4.2, age=2 * 86400, branch="main"),
        PastBuild("failure", duration=2.5, age=86400, branch="main"),
        PastBuild("success", duration=3.9, age=3 * 3600, branch="main"),
    ]
    api_history = [PastBuild("success", duration=4.1, age=5 * 3600, branch="develop")]
    return {
        "demo-project": {
            "web": ServiceConfig(
                "combined", "https://github.com/acme/web", "main", history=web_history
            ),
            "api": ServiceConfig("build", "https://github.com/acme/api", history=api_history),
            "runtime": ServiceConfig("deployment"),
            "bundle": ServiceConfig("build", build_source="bundle"),
        }
    }


@dataclass
class EmulatorConfig:
    """Everything one emulator serves; the defaults are the default world."""

    token: str | list[str] = DEFAULT_TOKEN
    read_only_tokens: list[str] = field(default_factory=list)
    rate_limit: int = 1000
    rate_window: float = 3600.0
    log_page_limit: int = 100
    projects: dict[str, dict[str, ServiceConfig]] = field(default_factory=default_projects)
    team_id: str | None = None
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    log_window: float = 1800.0
    log_envelope: LogEnvelope = "list"
    list_order: ListOrder = "newest-first"

    def __post_init__(self) -> None:
        if not self.tokens:
            raise ConfigError("at least one token is needed")
        if self.rate_limit < 1 or self.rate_window <= 0:
            raise ConfigError("rate_limit must be 1 or more and rate_window positive")
        if self.log_page_limit < 1:
            raise ConfigError("log_page_limit must be 1 or more")
        if not self.log_window > 0:
            raise ConfigError("log_window must be a positive number of seconds")
        if self.log_envelope not in LOG_ENVELOPES:
            raise ConfigError(f"log_envelope {self.log_envelope!r} is not one of {LOG_ENVELOPES}")
        if self.list_order not in LIST_ORDERS:
            raise ConfigError(f"list_order {self.list_order!r} is not one of {LIST_ORDERS}")
        for endpoint in self.faults:
            check_endpoint(endpoint)

    @property
    def tokens(self) -> list[str]:
        """The tokens with full access."""
        return [self.token] if isinstance(self.token, str) else list(self.token)


def load_config(path: str | Path) -> EmulatorConfig:
    """Read a YAML (.yml/.yaml) or JSON config file; raises ConfigError naming what is wrong."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yml", ".yaml"):
        import yaml  # only YAML configs need PyYAML

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from error
    else:
        try:
            raw = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"{path}: not valid JSON: {error}") from error
    try:
        return config_from_mapping(raw if raw is not None else {})
    except (ConfigError, TypeError) as error:
        raise ConfigError(f"{path}: {error}") from error


def config_from_mapping(raw: object) -> EmulatorConfig:
    """Build an EmulatorConfig from parsed YAML/JSON data, refusing unknown keys."""
    data = _mapping(raw, "config")
    _known_keys(data, EmulatorConfig, "config")
    values: dict[str, Any] = {k: v for k, v in data.items() if k not in ("projects", "faults")}
    if "projects" in data:
        values["projects"] = {
            str(project_id): {
                str(service_id): _service(service, f"{project_id}.{service_id}")
                for service_id, service in _mapping(services, str(project_id)).items()
            }
            for project_id, services in _mapping(data["projects"], "projects").items()
        }
    if "faults" in data:
        values["faults"] = {
            str(endpoint): [Fault.parse(str(text)) for text in _list(plan, str(endpoint))]
            for endpoint, plan in _mapping(data["faults"], "faults").items()
        }
    return EmulatorConfig(**values)


def _service(raw: object, where: str) -> ServiceConfig:
    data = dict(_mapping(raw if raw is not None else {}, where))
    _known_keys(data, ServiceConfig, where)
    for key, kind in (("history", PastBuild), ("external_builds", ExternalBuild)):
        if key in data:
            entries = []
            for entry in _list(data[key], f"{where}.{key}"):
                entry_data = _mapping(entry, f"{where}.{key}")
                _known_keys(entry_data, kind, f"{where}.{key}")
                try:
                    entries.append(kind(**entry_data))
                except ConfigError as error:
                    raise ConfigError(f"{where}.{key}: {error}") from error
            data[key] = entries
    if "phases" in data:
        data["phases"] = dict(_mapping(data["phases"], f"{where}.phases"))
    try:
        return ServiceConfig(**data)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from error


def _mapping(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return cast(Mapping[str, Any], raw)


def _list(raw: object, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list, got {type(raw).__name__}")
    return raw


def _known_keys(data: Mapping[str, Any], kind: type, where: str) -> None:
    allowed = {f.name for f in fields(kind)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")
