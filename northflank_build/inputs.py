"""Read the inputs from flags, INPUT_* and NORTHFLANK_* variables, all derived from action.yml.

action.yml is the one list of inputs and outputs: the flag parser, the environment reader and the
README's tables are built from it, so an input added there is accepted everywhere at once.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from northflank_build import __version__
from northflank_build.errors import InputError

# Aliases read by Northflank's own SDK, accepted after the NORTHFLANK_<NAME> spelling.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "api-token": ("NF_API_TOKEN",),
    "api-url": ("NORTHFLANK_API_BASE_URL", "NF_API_HOST"),
}
OUTPUT_FORMATS = ("text", "json")
# Settings outside action.yml that the program reads from the environment by these names.
OTHER_SETTINGS = ("NORTHFLANK_READ_TIMEOUT",)
# The prefixes of the names a typo would hide in: a variable with one of them that the program
# does not read is warned about.
WATCHED_PREFIXES = ("INPUT_", "NORTHFLANK_")


def variable_name(name: str) -> str:
    """The CI-neutral variable of an input or output: NORTHFLANK_ and the name in upper snake
    case (api-token: NORTHFLANK_API_TOKEN; build-id: NORTHFLANK_BUILD_ID)."""
    return "NORTHFLANK_" + name.upper().replace("-", "_")


@dataclass(frozen=True)
class InputSpec:
    """One input as action.yml declares it."""

    name: str
    description: str
    default: str
    required: bool

    @property
    def is_boolean(self) -> bool:
        return self.default in ("true", "false")

    @property
    def env_name(self) -> str:
        return variable_name(self.name)


@dataclass(frozen=True)
class Given:
    """A value given for an input, and where it came from (for error messages)."""

    value: str
    source: str


@dataclass(frozen=True)
class OutputSpec:
    """One output as action.yml declares it."""

    name: str
    description: str


def action_file() -> Path:
    """The action.yml shipped with the package (wheel), or the repository's own."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "action.yml", here.parent / "action.yml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("action.yml is missing from the installation")


@cache
def load_action() -> dict[str, Any]:
    """action.yml as a mapping."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(action_file().read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    if not isinstance(data, dict):
        raise ValueError("action.yml is not a mapping")
    return data


def input_specs(action: Mapping[str, Any]) -> list[InputSpec]:
    """The inputs of action.yml in their declared order."""
    return [
        InputSpec(
            name=name,
            description=" ".join(str(spec.get("description", "")).split()),
            default=str(spec.get("default", "")),
            required=bool(spec.get("required", False)),
        )
        for name, spec in action["inputs"].items()
    ]


def output_specs(action: Mapping[str, Any]) -> list[OutputSpec]:
    """The outputs of action.yml in their declared order."""
    return [
        OutputSpec(name, " ".join(str(spec.get("description", "")).split()))
        for name, spec in action["outputs"].items()
    ]


def without_values(message: str, argv: Sequence[str]) -> str:
    """argparse's message without any value given on the command line: one may be a secret
    given to a mistyped flag (`--api-tokn=VALUE`, `--api-tokn VALUE`)."""
    if message.startswith("unrecognized arguments:"):
        flags = [w.split("=", 1)[0] for w in message.split()[2:] if w.startswith("-")]
        return "unrecognized arguments: " + (" ".join(flags) or "values without a flag")
    for arg in sorted(argv, key=len, reverse=True):
        flag, equals, value = arg.partition("=")
        if equals and flag.startswith("-"):
            message = message.replace(arg, f"{flag}=…")
        else:
            value = arg
        if value:
            message = message.replace(repr(value), "'…'")
    return message


def flag_parser(specs: Sequence[InputSpec], argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """A parser with one --NAME flag per input, and --no-NAME for booleans; its errors quote
    nothing of argv."""

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            message = without_values(message, argv)
            raise InputError("", f"command line: {message} (see --help)")

    parser = _Parser(
        prog="northflank-build",
        description="Start a Northflank build, wait until it has concluded and report its outcome.",
        epilog="Every flag can also be given as NORTHFLANK_<NAME> or INPUT_<NAME>.",
        argument_default=None,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        default="text",
        help="json: print the outputs as one JSON object on stdout, for scripts",
    )
    for spec in specs:
        default = f" (default: {spec.default})" if spec.default else ""
        dest = spec.name.replace("-", "_")
        if spec.is_boolean:
            parser.add_argument(
                f"--{spec.name}", dest=dest, nargs="?", const="true", metavar="BOOL",
                help=spec.description + default,
            )  # fmt: skip
            parser.add_argument(
                f"--no-{spec.name}", dest=dest, action="store_const", const="false",
                help=argparse.SUPPRESS,
            )  # fmt: skip
        else:
            parser.add_argument(
                f"--{spec.name}", dest=dest, metavar="VALUE", help=spec.description + default
            )
    return parser


def env_names(spec: InputSpec) -> list[str]:
    """The environment variables that may carry an input, first match first."""
    upper = spec.name.upper()
    names = [f"INPUT_{upper}", f"INPUT_{upper.replace('-', '_')}", spec.env_name]
    names += ENV_ALIASES.get(spec.name, ())
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Inputs:
    """What was given for each input (defaults not applied).

    `style` is how this run was given its inputs: "action" (GitHub's INPUT_* under `uses:`),
    "flags" or "env" (NORTHFLANK_* variables); `unknown` lists the INPUT_* and NORTHFLANK_*
    variables set that no input or setting reads, each with the name it may have meant.
    """

    given: dict[str, Given]
    defaults: dict[str, str]
    style: str = "env"
    unknown: tuple[tuple[str, str | None], ...] = field(default_factory=tuple)
    booleans: frozenset[str] = field(default_factory=frozenset)

    def value(self, name: str) -> str:
        """The given value, else action.yml's default."""
        given = self.given.get(name)
        return given.value if given else self.defaults[name]

    def source(self, name: str) -> str:
        given = self.given.get(name)
        return given.source if given else "default"

    def explicit(self, name: str) -> bool:
        return name in self.given

    def form(self, name: str, value: str) -> str:
        """How to set input `name` to `value` the way this run is given that input (or, when
        it was not given, its other inputs): `wait: false`, `--no-wait` or `NORTHFLANK_WAIT=false`.
        """
        source = self.source(name)
        style = self.style
        if source.startswith("INPUT_"):
            style = "action"
        elif source.startswith("--"):
            style = "flags"
        elif source != "default":
            style = "env"
        if style == "action":
            return f"{name}: {value}"
        if style == "flags" and name in self.booleans and value in ("true", "false"):
            return f"--{name}" if value == "true" else f"--no-{name}"
        if style == "flags":
            return f"--{name} {value}"
        return f"{variable_name(name)}={value}"


def read_inputs(argv: Sequence[str], env: Mapping[str, str]) -> Inputs:
    """Collect the inputs: flags first, then INPUT_*, then NORTHFLANK_* and aliases.

    An empty value counts as not given. Under `uses:` the runner sets INPUT_<NAME> to
    action.yml's default for every input that `with:` does not name, so an INPUT_ value equal to
    the default yields to a NORTHFLANK_ variable (interface.md).
    """
    specs = input_specs(load_action())
    flags = vars(flag_parser(specs, argv).parse_args(list(argv)))
    given: dict[str, Given] = {}
    for spec in specs:
        flag = flags.get(spec.name.replace("-", "_"))
        if flag is not None and flag.strip():
            given[spec.name] = Given(flag, f"--{spec.name}")
            continue
        found = [Given(env[n], n) for n in env_names(spec) if env.get(n, "").strip()]
        action = next((g for g in found if g.source.startswith("INPUT_")), None)
        variable = next((g for g in found if not g.source.startswith("INPUT_")), None)
        if action is not None and (variable is None or action.value.strip() != spec.default):
            given[spec.name] = action
        elif variable is not None:
            given[spec.name] = variable
    known = {n for spec in specs for n in env_names(spec)}
    known |= {variable_name(o.name) for o in output_specs(load_action())}
    known |= set(OTHER_SETTINGS)
    return Inputs(
        given=given,
        defaults={spec.name: spec.default for spec in specs},
        style=_style(env, given, known),
        unknown=tuple(_unknown(env, known)),
        booleans=frozenset(spec.name for spec in specs if spec.is_boolean),
    )


def _style(env: Mapping[str, str], given: Mapping[str, Given], known: set[str]) -> str:
    """How this run is given its inputs: action (INPUT_*), flags, or env."""
    if any(name.startswith("INPUT_") and name in known for name in env):
        return "action"
    if any(g.source.startswith("--") for g in given.values()):
        return "flags"
    return "env"


def _unknown(env: Mapping[str, str], known: set[str]) -> list[tuple[str, str | None]]:
    """The INPUT_* and NORTHFLANK_* variables no input reads, each with the closest known name
    of the same kind (a likely typo), or None."""
    unknown = []
    for name in sorted(env):
        if not name.startswith(WATCHED_PREFIXES) or name in known:
            continue
        prefix = next(p for p in WATCHED_PREFIXES if name.startswith(p))
        same_kind = [k for k in known if k.startswith(prefix)]
        close = difflib.get_close_matches(name, same_kind, n=1, cutoff=0.75)
        unknown.append((name, close[0] if close else None))
    return unknown
