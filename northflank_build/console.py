"""What the user reads: lines, groups, warnings and errors, in the CI's own dialect.

Every line passes through redaction first, and a line that came from elsewhere (an API message, a
build log) can never be taken for a workflow command.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

from northflank_build.inputs import variable_name
from northflank_build.report import as_text

COMMAND_PREFIXES = ("::", "##")
# GitHub's runner also reads the old `##[command]` form, and Azure's agent `##vso[`, anywhere in
# a line; a space after the ## breaks both.
EMBEDDED_COMMAND = re.compile(r"##(?=\[|vso\[)", re.IGNORECASE)
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """The text with lone surrogates (from JSON escapes) replaced, so that it can be encoded."""
    return LONE_SURROGATE.sub("\ufffd", text)


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


def neutralize(line: str) -> str:
    """The line, changed just enough that no CI reads it, or anything in it, as a command."""
    line = EMBEDDED_COMMAND.sub("## ", line)
    return "| " + line if line.lstrip().startswith(COMMAND_PREFIXES) else line


class Console:
    """Plain output for any CI: `error:` and `warning:` lines, no commands."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.secrets: list[str] = []

    def add_secret(self, value: str) -> None:
        """Hide value from everything printed from now on, and from the CI's own log."""
        if value and value not in self.secrets:
            for line in value.splitlines():
                if line.strip():
                    self._register_secret(line)
            self.secrets.append(value)
            self.secrets.sort(key=len, reverse=True)

    def _register_secret(self, line: str) -> None:
        """Tell the CI to mask line; a CI without such a command relies on redact() alone."""

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def redact_value(self, value: Any) -> Any:
        """The value with every secret hidden, in every string it holds (keys too)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact_value(k): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(item) for item in value]
        return value

    def _emit(self, text: str, stream: TextIO | None = None) -> None:
        stream = stream or self.out
        stream.write(printable(text) + "\n")
        stream.flush()

    def info(self, text: str) -> None:
        for line in self.redact(text).splitlines() or [""]:
            self._emit(neutralize(line))

    def lines(self, lines: Iterable[str]) -> None:
        """Text from outside (build logs): redacted and neutralized, line by line."""
        for line in lines:
            self.info(line)

    def debug(self, text: str) -> None:
        pass

    def warning(self, text: str, title: str = "") -> None:
        self._emit(neutralize("warning: " + one_line(self.redact(text))), self.err)

    def error(self, text: str, title: str = "") -> None:
        self._emit(neutralize("error: " + one_line(self.redact(text))), self.err)

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
        props = f" title={escape_property(self.redact(title))}" if title else ""
        self._emit(f"::{name}{props}::{escape_data(self.redact(text))}")

    def debug(self, text: str) -> None:
        self._command("debug", text, "")

    def warning(self, text: str, title: str = "") -> None:
        self._command("warning", text, title)

    def error(self, text: str, title: str = "") -> None:
        self._command("error", text, title)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self._emit(f"::group::{escape_data(self.redact(title))}")
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
        message = f"{title}: {text}" if title else text
        self._emit(f"##vso[task.logissue type={kind}]{escape_azure_data(self.redact(message))}")

    def debug(self, text: str) -> None:
        if self.debugging:
            for line in self.redact(text).splitlines():
                self._emit(f"##[debug]{neutralize(line)}")

    def warning(self, text: str, title: str = "") -> None:
        self._issue("warning", text, title)

    def error(self, text: str, title: str = "") -> None:
        self._issue("error", text, title)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self._emit(f"##[group]{neutralize(self.redact(title).replace(chr(10), ' '))}")
        try:
            yield
        finally:
            self._emit("##[endgroup]")

    def set_outputs(self, values: Mapping[str, Any]) -> None:
        """Each output as an output variable, NORTHFLANK_BUILD_ID etc., read as
        $(<step name>.NORTHFLANK_BUILD_ID) in later steps."""
        for name, value in values.items():
            variable = escape_azure_property(variable_name(name))
            data = escape_azure_data(self.redact(as_text(value)))
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
