"""Read the inputs from flags, INPUT_* and NORTHFLANK_* variables, all derived from action.yml.

action.yml is the one list of inputs: the flag parser and the environment reader are built from
it, so an input added there is accepted everywhere at once. A run reads its inputs and outputs
from action.json beside this module, a copy that `python -m northflank_build.docs` writes from
action.yml (a test keeps the two equal): parsing JSON costs a run far less than importing PyYAML.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from northflank_build import __version__
from northflank_build.errors import InputError

if TYPE_CHECKING:
    import argparse

ACTION_COPY = Path(__file__).with_name("action.json")
COPY_NOTE = "Written from action.yml by python -m northflank_build.docs; do not edit."

# Aliases read by Northflank's own SDK, accepted after the NORTHFLANK_<NAME> spelling.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "api-token": ("NF_API_TOKEN",),
    "api-url": ("NORTHFLANK_API_BASE_URL", "NF_API_HOST"),
}
OUTPUT_FORMATS = ("text", "json")


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
        return "NORTHFLANK_" + self.name.upper().replace("-", "_")


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


def load_action() -> dict[str, Any]:
    """action.yml as a mapping."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(action_file().read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    if not isinstance(data, dict):
        raise ValueError("action.yml is not a mapping")
    return data


def action_copy_text(action: Mapping[str, Any]) -> str:
    """action.json's text: the inputs and outputs of action.yml, as JSON."""
    copy = {"note": COPY_NOTE, "inputs": action["inputs"], "outputs": action["outputs"]}
    return json.dumps(copy, indent=2, ensure_ascii=False) + "\n"


def load_action_copy() -> dict[str, Any]:
    """The inputs and outputs of action.yml, read from its JSON copy."""
    data = json.loads(ACTION_COPY.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("action.json is not an object")
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
    import argparse  # only runs given flags need it

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
    """What was given for each input (defaults not applied), plus the program's own flags."""

    given: dict[str, Given]
    defaults: dict[str, str]
    output_format: str = "text"

    def value(self, name: str) -> str:
        """The given value, else action.yml's default."""
        given = self.given.get(name)
        return given.value if given else self.defaults[name]

    def source(self, name: str) -> str:
        given = self.given.get(name)
        return given.source if given else "default"

    def explicit(self, name: str) -> bool:
        return name in self.given


def read_inputs(argv: Sequence[str], env: Mapping[str, str]) -> Inputs:
    """Collect the inputs: flags first, then INPUT_*, then NORTHFLANK_* and aliases.

    An empty value counts as not given.
    """
    specs = input_specs(load_action_copy())
    # The action passes everything through the environment; a parser is built for flags only.
    flags = vars(flag_parser(specs, argv).parse_args(list(argv))) if argv else {}
    given: dict[str, Given] = {}
    for spec in specs:
        flag = flags.get(spec.name.replace("-", "_"))
        if flag is not None and flag.strip():
            given[spec.name] = Given(flag, f"--{spec.name}")
            continue
        for name in env_names(spec):
            value = env.get(name, "")
            if value.strip():
                given[spec.name] = Given(value, name)
                break
    return Inputs(
        given=given,
        defaults={spec.name: spec.default for spec in specs},
        output_format=str(flags.get("output_format") or "text"),
    )
