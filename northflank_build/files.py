"""Files given by path (`{file: path}` in build-files and docker-secret-mounts): resolved, confined
and bounded, so that an input can neither send the runner's own secrets nor hang or exhaust a run.

A path is resolved, symlinks included, and must then lie in the workspace (relative paths start
there) or in the CI's own folder for secret files; never under /proc, /sys or /dev. Only a regular
file of at most MAX_FILE bytes is read: a FIFO, a device or a socket is refused before it is read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MAX_FILE = 1 << 20  # bytes: a build file or secret mount is a config file, a key, a CA bundle
FORBIDDEN = (Path("/proc"), Path("/sys"), Path("/dev"))
# The workspace of each CI system, in the order the CI context detects them (context/__init__.py);
# without any, the working directory.
WORKSPACE_VARIABLES = (
    "GITHUB_WORKSPACE",  # GitHub Actions
    "CI_WORKSPACE",  # Woodpecker
    "CI_PROJECT_DIR",  # GitLab CI
    "CIRCLE_WORKING_DIRECTORY",  # CircleCI (may start with ~)
    "BITBUCKET_CLONE_DIR",  # Bitbucket Pipelines
    "BUILD_SOURCESDIRECTORY",  # Azure Pipelines
    "BUILDKITE_BUILD_CHECKOUT_PATH",  # Buildkite
    "TRAVIS_BUILD_DIR",  # Travis CI
    "DRONE_WORKSPACE",  # Drone
    "CODEBUILD_SRC_DIR",  # AWS CodeBuild
    "WORKSPACE",  # Jenkins
)
KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}


@dataclass(frozen=True)
class Folders:
    """Where files given by path may be: the workspace, and the CI's folders for secret files."""

    workspace: Path
    secret_folders: tuple[Path, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Folders:
        workspace = next(
            (Path(env[name]).expanduser() for name in WORKSPACE_VARIABLES if env.get(name)),
            Path.cwd(),
        )
        return cls(workspace, secret_folders(env))

    def describe(self) -> str:
        places = [f"the workspace {self.workspace}"]
        places += [f"the CI's secret files folder {folder}" for folder in self.secret_folders]
        return " or ".join(places)


def secret_folders(env: Mapping[str, str]) -> tuple[Path, ...]:
    """The folders where the CI system puts the secret files it hands to a job."""
    folders = []
    if env.get("RUNNER_TEMP"):  # GitHub Actions: /github/runner_temp in a container action
        folders.append(Path(env["RUNNER_TEMP"]))
    if env.get("GITLAB_CI") and env.get("CI_PROJECT_DIR"):  # file-type CI/CD variables
        folders.append(Path(env["CI_PROJECT_DIR"].rstrip("/") + ".tmp"))
    if env.get("AGENT_TEMPDIRECTORY"):  # Azure Pipelines: secure files
        folders.append(Path(env["AGENT_TEMPDIRECTORY"]))
    if env.get("JENKINS_URL") and env.get("WORKSPACE"):  # credentials bound as files
        folders.append(Path(env["WORKSPACE"].rstrip("/") + "@tmp"))
    return tuple(folders)


def read_file(given: str, folders: Folders) -> bytes:
    """The content of the file at `given` (relative to the workspace); ValueError saying why not."""
    path = Path(given)
    path = path if path.is_absolute() else folders.workspace / path
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise ValueError(
            f"file {given} does not exist (relative paths start at the workspace, "
            f"{folders.workspace})"
        ) from None
    except (OSError, RuntimeError):  # a symlink loop, a folder that cannot be entered
        raise ValueError(f"file {given} cannot be resolved (a symlink loop?)") from None
    if any(real.is_relative_to(place) for place in FORBIDDEN):
        raise ValueError(f"file {given} is {real}: files under /proc, /sys or /dev are never read")
    roots = [folders.workspace, *folders.secret_folders]
    if not any(real.is_relative_to(_resolved(root)) for root in roots):
        where = f" ({real})" if str(real) != given else ""
        raise ValueError(
            f"file {given}{where} is outside {folders.describe()}: only files there are read"
        )
    return _read_regular(real, given)


def _resolved(folder: Path) -> Path:
    try:
        return folder.resolve()
    except (OSError, RuntimeError):
        return folder


def _read_regular(real: Path, given: str) -> bytes:
    # O_NONBLOCK: opening a FIFO for reading must not wait for a writer; O_NOFOLLOW: the path was
    # resolved, so a symlink here was swapped in since.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        descriptor = os.open(real, flags)
    except OSError as error:
        reason = (error.strerror or "cannot be read").lower()
        raise ValueError(f"file {given} cannot be read: {reason}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            kind = KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise ValueError(f"file {given} is {kind}: give a regular file")
        chunks, size = [], 0
        while info.st_size <= MAX_FILE and size <= MAX_FILE:  # the file may grow meanwhile
            chunk = os.read(descriptor, MAX_FILE + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if info.st_size > MAX_FILE or size > MAX_FILE:
            raise ValueError(f"file {given} is larger than {MAX_FILE >> 20} MiB")
    finally:
        os.close(descriptor)
    return b"".join(chunks)
