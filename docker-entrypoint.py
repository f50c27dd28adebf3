#!/usr/bin/env -S python3 -S
"""The image's entry point, under tini: northflank-build, or the command the container is given.

With no arguments or with flags it runs northflank-build (entrypoint.py) in this process. Given a
command (GitLab's shell, Jenkins' `cat`, the keep-alive of Azure Pipelines) it runs that command in
its place. No shell stands in between: dash, Debian's /bin/sh, drops every variable whose name has
a hyphen, such as the runner's INPUT_API-TOKEN, from the environment of whatever it starts.

-S leaves site-packages out until the program needs them, so that a command starts within a few
milliseconds: Jenkins looks for its `cat` as soon as the container has started.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def run_command(command: list[str]) -> NoReturn:
    """Replace this process with command, found on PATH, as a shell's exec would."""
    import signal

    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec.
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.execvp(command[0], command)  # noqa: S606 the command is the container's own
    except OSError as error:
        print(f"error: cannot run {command[0]}: {error.strerror}", file=sys.stderr)
        os._exit(127 if isinstance(error, FileNotFoundError) else 126)


def run_program() -> None:
    """entrypoint.py as the script it is, with the site-packages -S left out."""
    import runpy
    import site

    site.main()
    program = os.path.join(os.path.dirname(os.path.realpath(__file__)), "entrypoint.py")
    sys.argv[0] = program
    runpy.run_path(program, run_name="__main__")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments and not arguments[0].startswith("-"):
        run_command(arguments)
    run_program()
