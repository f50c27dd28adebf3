#!/usr/bin/env python3
"""The image's entry point, under tini: northflank-build, or the command the container is given.

With no arguments or with flags it runs northflank-build (entrypoint.py) in this process. Given a
command (GitLab's shell, Jenkins' `cat`, the keep-alive of Azure Pipelines) it runs that command in
its place. No shell stands in between: dash, Debian's /bin/sh, drops every variable whose name has
a hyphen, such as the runner's INPUT_API-TOKEN, from the environment of whatever it starts.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path
from typing import NoReturn

PROGRAM = Path(__file__).resolve().with_name("entrypoint.py")


def run_command(command: list[str]) -> NoReturn:
    """Replace this process with command, found on PATH, as a shell's exec would."""
    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec.
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.execvp(command[0], command)  # noqa: S606 the command is the container's own
    except OSError as error:
        print(f"error: cannot run {command[0]}: {error.strerror}", file=sys.stderr)
        os._exit(127 if isinstance(error, FileNotFoundError) else 126)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments and not arguments[0].startswith("-"):
        run_command(arguments)
    sys.argv[0] = str(PROGRAM)
    runpy.run_path(str(PROGRAM), run_name="__main__")
