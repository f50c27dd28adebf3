"""What the user reads: lines, groups, warnings and errors, in the CI's own dialect.

Every line passes through redaction first, and a line that came from elsewhere (an API message, a
build log) can never be taken for a workflow command.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

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
        """Hide value from everything printed from now on."""
        if value and value not in self.secrets:
            self.secrets.append(value)
            self.secrets.sort(key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

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


class GitHubConsole(Console):
    """GitHub Actions: masks, annotations and groups as workflow commands."""

    def __init__(self, out: TextIO | None = None, debug: bool = False) -> None:
        out = out or sys.stdout
        super().__init__(out, out)
        self.debugging = debug

    def add_secret(self, value: str) -> None:
        if value and value not in self.secrets:
            for line in value.splitlines():
                if line.strip():
                    self._emit(f"::add-mask::{escape_data(line)}")
        super().add_secret(value)

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


def for_environment(env: Mapping[str, str], *, quiet_stdout: bool = False) -> Console:
    """The console that suits the CI described by env."""
    if env.get("GITHUB_ACTIONS") == "true":
        return GitHubConsole(debug=env.get("RUNNER_DEBUG") == "1")
    return Console(out=sys.stderr if quiet_stdout else sys.stdout)
