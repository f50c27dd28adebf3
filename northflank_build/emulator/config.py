"""What the emulator serves: tokens, limits, projects, services and their build behaviour.

A config file (YAML or JSON, chosen by its extension) maps onto these dataclasses; every key is
optional and unknown keys are refused so a typo does not go unnoticed::

    token: demo-token               # one token or a list of tokens with full access
    read_only_tokens: [viewer]      # tokens that may read but not start or abort builds
    team_id: acme                   # if set, /v1/teams/{teamId}/... accepts only this team
    rate_limit: 1000                # requests per token per window
    rate_window: 3600               # seconds; a token's window starts at its first request
    log_page_limit: 100             # most log lines one build-logs answer holds
    projects:                       # without it: the default world (see default_projects)
      demo-project:
        web:
          type: combined            # combined | build | deployment
          repository: https://github.com/acme/web
          branch: main              # a combined service's linked branch
          build_source: git         # git | bundle
          outcome: success          # success | failure | crash, or a list cycled per build
          phases: {QUEUED: 0.5, CLONING: 0.8, BUILDING: 2.0, UPLOADING: 0.7}  # seconds
          log_lines_per_phase: 12
          history:                  # past builds the list endpoint returns
            - {outcome: success, duration: 95, branch: main, age: 86400}
    faults:                         # endpoint -> fault strings, see faults.py
      POST build: [reset-after, ok]

A build goes QUEUED -> CLONING -> BUILDING -> UPLOADING -> SUCCESS; a failing or crashing build
ends after BUILDING (FAILURE or CRASHED). Each phase logs log_lines_per_phase lines in bursts of
up to 10 lines sharing one timestamp, spread over the phase (a 0 s phase logs them all at once).
History builds take their phases' proportions stretched to `duration`; `age` is how many seconds
before the emulator started they were created; outcome may also be `aborted`.
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
Outcome = Literal["success", "failure", "crash"]
PastOutcome = Literal["success", "failure", "crash", "aborted"]

PHASES = ("QUEUED", "CLONING", "BUILDING", "UPLOADING")
DEFAULT_PHASES = {"QUEUED": 0.5, "CLONING": 0.8, "BUILDING": 2.0, "UPLOADING": 0.7}
SERVICE_TYPES = ("combined", "build", "deployment")
BUILD_SOURCES = ("git", "bundle")
OUTCOMES = ("success", "failure", "crash")
DEFAULT_TOKEN = "demo-token"  # noqa: S105 (a published demo token, not a secret)


class ConfigError(ValueError):
    """A config (file or dataclass) that the emulator cannot serve; the message names the key."""


@dataclass
class PastBuild:
    """A build that concluded before the emulator started, listed as part of a service's history."""

    outcome: PastOutcome = "success"
    duration: float = 90.0
    age: float = 3600.0
    sha: str | None = None
    branch: str | None = None
    pull_request_id: int | None = None

    def __post_init__(self) -> None:
        if self.outcome not in (*OUTCOMES, "aborted"):
            raise ConfigError(f"history outcome {self.outcome!r} is not one of {OUTCOMES}")
        if self.duration < 0 or self.age < self.duration:
            raise ConfigError("history entries need 0 <= duration <= age (seconds)")
        if self.sha is not None and len(self.sha) != 40:
            raise ConfigError(f"history sha {self.sha!r} must be 40 characters")


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

    def __post_init__(self) -> None:
        if self.type not in SERVICE_TYPES:
            raise ConfigError(f"service type {self.type!r} is not one of {SERVICE_TYPES}")
        if self.build_source not in BUILD_SOURCES:
            raise ConfigError(f"build_source {self.build_source!r} is not one of {BUILD_SOURCES}")
        outcomes = self.outcome if isinstance(self.outcome, list) else [self.outcome]
        if not outcomes or any(o not in OUTCOMES for o in outcomes):
            raise ConfigError(f"outcome {self.outcome!r} must be one or more of {OUTCOMES}")
        phases = {key.upper(): float(value) for key, value in self.phases.items()}
        unknown = sorted(set(phases) - set(PHASES))
        if unknown or any(value < 0 for value in phases.values()):
            raise ConfigError(f"phases take non-negative seconds for {PHASES}, got {self.phases}")
        # A phase left out keeps its default so a config can tune one phase alone.
        self.phases = {phase: phases.get(phase, DEFAULT_PHASES[phase]) for phase in PHASES}
        if self.log_lines_per_phase < 0:
            raise ConfigError("log_lines_per_phase must be zero or more")

    def outcome_of(self, build_number: int) -> Outcome:
        """The outcome of this service's build_number-th build (0-based), cycling the list."""
        if isinstance(self.outcome, list):
            return self.outcome[build_number % len(self.outcome)]
        return self.outcome


def default_projects() -> dict[str, dict[str, ServiceConfig]]:
    """The default world: project demo-project with services web, api, runtime and bundle."""
    web_history = [
        PastBuild("success", duration=84, age=2 * 86400, branch="main"),
        PastBuild("failure", duration=61, age=86400, branch="main"),
        PastBuild("success", duration=92, age=3 * 3600, branch="main"),
    ]
    api_history = [PastBuild("success", duration=120, age=5 * 3600, branch="develop")]
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

    def __post_init__(self) -> None:
        if not self.tokens:
            raise ConfigError("at least one token is needed")
        if self.rate_limit < 1 or self.rate_window <= 0:
            raise ConfigError("rate_limit must be 1 or more and rate_window positive")
        if self.log_page_limit < 1:
            raise ConfigError("log_page_limit must be 1 or more")
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
    if "history" in data:
        history = []
        for entry in _list(data["history"], f"{where}.history"):
            entry_data = _mapping(entry, f"{where}.history")
            _known_keys(entry_data, PastBuild, f"{where}.history")
            history.append(PastBuild(**entry_data))
        data["history"] = history
    if "phases" in data:
        data["phases"] = dict(_mapping(data["phases"], f"{where}.phases"))
    return ServiceConfig(**data)


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
