"""What the user reads: lines, groups, warnings and errors, in the CI's own dialect.

Every line passes through redaction first (masking.py), loses every control character and escape
sequence (a terminal would obey them), is shortened to LINE_LIMIT characters, and when it came
from elsewhere (an API message, a build log) can never be taken for a workflow command. A stream
whose reader is gone (a closed pipe) is written to no more: printing never raises, so it can never
stand between a signal and the abort, nor stop the outputs from being written.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

from northflank_build.inputs import variable_name
from northflank_build.masking import Masker
from northflank_build.report import as_text

COMMAND_PREFIXES = ("::", "##")
# Outputs made of the program's own words and numbers: never masked, whatever the secrets.
OWN_OUTPUTS = frozenset(
    {"result", "concluded", "success", "duration-seconds", "api-requests", "reused"}
)
OWN_KEYS = frozenset({"request", "error"})  # outputs whose objects' keys are the program's
LINE_LIMIT = 8192  # characters of one printed line or annotation, cut in the middle beyond it
# GitHub's runner also reads the old `##[command]` form, and Azure's agent `##vso[`, anywhere in
# a line; a space after the ## breaks both.
EMBEDDED_COMMAND = re.compile(r"##(?=\[|vso\[)", re.IGNORECASE)
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Every line break Python's splitlines() knows, so that a line stays a line once cleaned.
LINE_BREAK = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Escape sequences (CSI, OSC, DCS/SOS/PM/APC, two-character ones), then every other C0 and C1
# control but tab and line feed, and the bidirectional overrides that reorder what is shown.
# Each alternative stops at the next ESC (or BEL, ST, line feed), so the whole is linear.
CONTROL = re.compile(
    "\x1b\\[[0-?]*[ -/]*[@-~]?"
    "|\x1b\\][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\\\|\x9c)?"
    "|\x1b[PX^_][^\x1b\x9c\n]*(?:\x1b\\\\|\x9c)?"
    "|\x1b[ -/]*[0-~]?"
    "|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
)


def printable(text: str) -> str:
    """The text with lone surrogates (from JSON escapes) replaced, so that it can be encoded."""
    return LONE_SURROGATE.sub("\ufffd", text)


def sanitize(text: str) -> str:
    """The text without control characters and escape sequences; tabs stay, and every line
    break becomes a line feed."""
    return CONTROL.sub("", LINE_BREAK.sub("\n", text))


def shorten(text: str, most: int = LINE_LIMIT) -> str:
    """The text, cut in the middle when it is longer than `most` characters."""
    if len(text) <= most:
        return text
    keep = (most - 40) // 2
    return f"{text[:keep]} … ({len(text) - 2 * keep} characters left out) … {text[-keep:]}"


def one_line(text: str) -> str:
    """The text on one line: every kind of line break becomes a space."""
    return " ".join(text.splitlines())


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def escape_azure_data(text: str) -> str:
    """An Azure logging command's message, escaped as the agent unescapes it (% first)."""
    return text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def escape_azure_property(text: str) -> str:
    """An Azure logging command's property value: also `;` (between properties) and `]`."""
    return escape_azure_data(text).replace(";", "%3B").replace("]", "%5D")


def unembed(text: str) -> str:
    """The text with every `##[` and `##vso[` broken, so that no CI reads a command inside it."""
    return EMBEDDED_COMMAND.sub("## ", text)


def neutralize(line: str) -> str:
    """The line, changed just enough that no CI reads it, or anything in it, as a command."""
    line = unembed(line)
    return "| " + line if line.lstrip().startswith(COMMAND_PREFIXES) else line


class Console:
    """Plain output for any CI: `error:` and `warning:` lines, no commands."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.masker = Masker()
        self._closed: list[TextIO] = []

    def add_secret(self, value: str, *, token: bool = False) -> None:
        """Hide value from everything printed from now on, by the rule of masking.py (the token
        always), and register the lines hidden wherever they appear with the CI's own log."""
        for line in self.masker.add(value, always=token):
            self._register_secret(line)

    def _register_secret(self, line: str) -> None:
        """Tell the CI to mask line; a CI without such a command relies on redact() alone."""

    def redact(self, text: str) -> str:
        """The text with every secret hidden."""
        return self.masker.hide(text)

    def redact_outputs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs with every secret hidden in what came from outside: the program's own
        words and numbers (OWN_OUTPUTS) and the keys of the objects it made (request, builds,
        error) are left alone, so that no mask reaches the outputs' own structure."""
        hidden: dict[str, Any] = {}
        for name, value in values.items():
            if name in OWN_OUTPUTS:
                hidden[name] = value
            elif name == "builds":
                hidden[name] = [self.redact_outputs(entry) for entry in value]
            else:
                hidden[name] = self._redact_value(value, keys=name not in OWN_KEYS)
        return hidden

    def _redact_value(self, value: Any, keys: bool) -> Any:
        """The value with every secret hidden, in every string it holds (keys too, with keys)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {
                self.redact(k) if keys and isinstance(k, str) else k: self._redact_value(v, keys)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._redact_value(item, keys) for item in value]
        return value

    def shown(self, text: str) -> str:
        """The text as it may be printed: secrets hidden, control characters and escape
        sequences removed (and secrets hidden again: the escapes could have split one)."""
        return self.redact(sanitize(self.redact(text)))

    def _emit(self, text: str, stream: TextIO | None = None) -> None:
        """Write one line; a stream that fails (its reader gone) is written to no more."""
        stream = stream or self.out
        if stream in self._closed:
            return
        try:
            stream.write(printable(text) + "\n")
            stream.flush()
        except (OSError, ValueError):
            self._closed.append(stream)

    def info(self, text: str) -> None:
        for line in self.redact(text).splitlines() or [""]:
            self._emit(neutralize(shorten(self.shown(line))))

    def lines(self, lines: Iterable[str]) -> None:
        """Text from outside (build logs): redacted and neutralized, line by line."""
        for line in lines:
            self.info(line)

    def debug(self, text: str) -> None:
        pass

    def warning(self, text: str, title: str = "") -> None:
        self._emit(neutralize("warning: " + shorten(one_line(self.shown(text)))), self.err)

    def error(self, text: str, title: str = "") -> None:
        self._emit(neutralize("error: " + shorten(one_line(self.shown(text)))), self.err)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self.info(title)
        yield

    def set_outputs(self, values: Mapping[str, Any]) -> None:
        """Hand the outputs to the CI where it takes them from the log (Azure Pipelines)."""


class GitHubConsole(Console):
    """GitHub Actions: masks, annotations and groups as workflow commands, all on one stream."""

    def __init__(self, out: TextIO | None = None) -> None:
        out = out or sys.stdout
        super().__init__(out, out)

    def _register_secret(self, line: str) -> None:
        self._emit(f"::add-mask::{escape_data(line)}")

    def _command(self, name: str, text: str, title: str) -> None:
        props = f" title={escape_property(unembed(shorten(self.shown(title))))}" if title else ""
        self._emit(f"::{name}{props}::{escape_data(unembed(shorten(self.shown(text))))}")

    def debug(self, text: str) -> None:
        self._command("debug", text, "")

    def warning(self, text: str, title: str = "") -> None:
        self._command("warning", text, title)

    def error(self, text: str, title: str = "") -> None:
        self._command("error", text, title)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self._emit(f"::group::{escape_data(unembed(shorten(self.shown(title))))}")
        try:
            yield
        finally:
            self._emit("::endgroup::")


class AzureConsole(Console):
    """Azure Pipelines: secrets, issues, output variables and groups as logging commands.

    Everything goes to one stream, so a secret is registered before any line that follows it.
    """

    def __init__(self, out: TextIO | None = None, debug: bool = False) -> None:
        out = out or sys.stdout
        super().__init__(out, out)
        self.debugging = debug

    def _register_secret(self, line: str) -> None:
        self._emit(f"##vso[task.setsecret]{escape_azure_data(line)}")

    def _issue(self, kind: str, text: str, title: str) -> None:
        message = unembed(shorten(self.shown(f"{title}: {text}" if title else text)))
        self._emit(f"##vso[task.logissue type={kind}]{escape_azure_data(message)}")

    def debug(self, text: str) -> None:
        if self.debugging:
            for line in self.redact(text).splitlines():
                self._emit(f"##[debug]{neutralize(shorten(self.shown(line)))}")

    def warning(self, text: str, title: str = "") -> None:
        self._issue("warning", text, title)

    def error(self, text: str, title: str = "") -> None:
        self._issue("error", text, title)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self._emit(f"##[group]{neutralize(shorten(one_line(self.shown(title))))}")
        try:
            yield
        finally:
            self._emit("##[endgroup]")

    def set_outputs(self, values: Mapping[str, Any]) -> None:
        """Each output as an output variable, NORTHFLANK_BUILD_ID etc., read as
        $(<step name>.NORTHFLANK_BUILD_ID) in later steps. The values come with their secrets
        hidden (the outputs' own words and keys are left alone there, see cli.py)."""
        for name, value in values.items():
            variable = escape_azure_property(variable_name(name))
            data = escape_azure_data(unembed(sanitize(as_text(value))))
            self._emit(f"##vso[task.setvariable variable={variable};isoutput=true]{data}")


def for_environment(
    env: Mapping[str, str], *, stdout: TextIO, stderr: TextIO, quiet: bool = False
) -> Console:
    """The console that suits the CI described by env; with quiet, stdout is left to the
    program's own JSON and everything else goes to stderr."""
    out = stderr if quiet else stdout
    if env.get("GITHUB_ACTIONS") == "true":
        return GitHubConsole(out)
    if env.get("TF_BUILD", "").strip().lower() == "true":
        return AzureConsole(out, debug=env.get("SYSTEM_DEBUG", "").strip().lower() == "true")
    return Console(out=out, err=stderr)
