"""podman as the image tests and the benchmarks use it: its settings, the base, the image.

The image is built from the repository's Dockerfile as it is, except perhaps its base. On Debian
machines such as the one CI runs on, the Dockerfile's python:3.11-slim-bookworm cannot be pulled,
so `podman build --from` puts a stand-in in its place: tests/standin/build.sh makes it and lists
how it differs from the real base. It is built once per recipe (its tag is the hash of
tests/standin/ and of the machine's apt sources), so a normal run builds only the project's
layers. Elsewhere the real base is pulled. IMAGE_BASE=standin or IMAGE_BASE=dockerfile chooses.

Every image this module names starts with localhost/nfba-: the engine's storage may be shared.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STANDIN = REPO / "tests" / "standin"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d/debian.sources"))
# The build steps reach the package index through this machine's TLS-inspecting proxy: its CA
# bundle is mounted for the build only, so nothing of the machine ends up in the image.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SKIP_VARIABLE = "SKIP_IMAGE_TESTS"
HOW_TO_SKIP = f"set {SKIP_VARIABLE}=1 to skip the image checks (never in CI)"
BUILD_TIMEOUT = 900.0


class EngineError(RuntimeError):
    """podman failed; the message ends with the tail of its output."""


@dataclass(frozen=True)
class Podman:
    """The podman command with this machine's settings, kept out of the machine's own files."""

    binary: str
    settings: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.settings)}

    def command(self, *args: str) -> list[str]:
        return [self.binary, *args]

    def run(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 120.0,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """podman ARGS to completion; EngineError when it fails and check is set."""
        result = subprocess.run(
            self.command(*args),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**self.env, **(env or {})},
        )
        if check and result.returncode != 0:
            raise EngineError(failure(f"podman {args[0]}", result.stdout + result.stderr))
        return result

    def image_exists(self, name: str) -> bool:
        return self.run("image", "exists", name, check=False).returncode == 0


def failure(what: str, output: str) -> str:
    tail = "\n".join(output.strip().splitlines()[-15:])
    return f"{what} failed:\n{tail}"


def settings_text() -> str:
    """containers.conf for this kind of machine.

    runc, because crun refuses a machine that mixes cgroup v1 and v2; cgroupfs, as no systemd
    runs here; ulimits within the machine's hard limits, which podman's defaults exceed.
    """
    _, nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    _, nproc = resource.getrlimit(resource.RLIMIT_NPROC)
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    return (
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
    )


def engine() -> Podman:
    """podman with its settings written; EngineError when it is not installed."""
    binary = shutil.which("podman")
    if binary is None:
        raise EngineError("podman is not installed")
    settings = Path(tempfile.gettempdir()) / f"nfba-containers-{os.getuid()}.conf"
    text = settings_text()
    if not settings.is_file() or settings.read_text(encoding="utf-8") != text:
        partial = settings.with_suffix(f".{os.getpid()}")
        partial.write_text(text, encoding="utf-8")
        partial.replace(settings)
    return Podman(binary, settings)


def problem() -> str | None:
    """Why no image can be built and run here, or None."""
    try:
        podman = engine()
    except EngineError as error:
        return (
            f"{error} (make test installs podman, runc and debootstrap from Debian's packages "
            "where apt is there: tests/engine.sh)"
        )
    info = podman.run("info", check=False, timeout=60)
    if info.returncode != 0:
        return failure("podman info", info.stdout + info.stderr)
    if uses_standin(podman) and not podman.image_exists(standin_tag()):
        if os.geteuid() != 0:
            return "the stand-in base is built with debootstrap, as root, and this user is not root"
        if shutil.which("debootstrap") is None:
            return "debootstrap is not installed, and the stand-in base must be built"
    return None


# -- the base ---------------------------------------------------------------------------------


def dockerfile_base() -> str:
    """The image the Dockerfile's first FROM names, with its registry spelt out."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    name = next(line.split()[1] for line in text.splitlines() if line.startswith("FROM "))
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    return name if "." in first or ":" in first else f"docker.io/{name}"


def on_debian() -> bool:
    release = Path("/etc/os-release")
    return release.is_file() and "\nID=debian\n" in "\n" + release.read_text(encoding="utf-8")


def uses_standin(podman: Podman) -> bool:
    """Whether the stand-in takes the real base's place (IMAGE_BASE says, or the machine does)."""
    choice = os.environ.get("IMAGE_BASE", "")
    if choice in ("standin", "dockerfile"):
        return choice == "standin"
    return on_debian() and not podman.image_exists(dockerfile_base())


def base_image(podman: Podman) -> str:
    """The base to build on: the stand-in, or the Dockerfile's own, pulled when missing."""
    if uses_standin(podman):
        return standin(podman)
    name = dockerfile_base()
    if not podman.image_exists(name):
        podman.run("pull", "--quiet", name, timeout=BUILD_TIMEOUT)
    return name


# -- the stand-in base ------------------------------------------------------------------------


def recipe_hash() -> str:
    """The hash of what the stand-in is made from: its recipe and the machine's apt sources."""
    digest = hashlib.sha256()
    for path in [*sorted(STANDIN.iterdir()), *APT_SOURCES]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def standin_tag() -> str:
    return f"localhost/nfba-standin-python:{recipe_hash()}"


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """One process at a time on this machine, across worktrees and test sessions."""
    path = Path(tempfile.gettempdir()) / f"nfba-{name}.lock"
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def standin(podman: Podman) -> str:
    """The stand-in base's tag, built first when its recipe has changed."""
    tag = standin_tag()
    with locked("standin"):
        if not podman.image_exists(tag):
            debian = tag.replace("nfba-standin-python", "nfba-standin-debian")
            result = subprocess.run(
                ["bash", str(STANDIN / "build.sh"), debian, tag],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
                env=podman.env,
            )
            if result.returncode != 0:
                raise EngineError(failure("tests/standin/build.sh", result.stdout + result.stderr))
    return tag


# -- the project's image ----------------------------------------------------------------------


def image_tag(purpose: str = "test") -> str:
    """A tag of this worktree's own, so that checkouts side by side do not take each other's."""
    return f"localhost/nfba-action:{purpose}-{hashlib.sha256(str(REPO).encode()).hexdigest()[:8]}"


def build_arguments(base: str, tag: str, context: Path, extra: Sequence[str] = ()) -> list[str]:
    """podman build's arguments: the Dockerfile as it is, on the given base."""
    args = ["build", "--from", base, "--network=host", "--tag", tag, *extra]
    if CA_BUNDLE.is_file():
        args += ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    return [*args, str(context)]


def build(
    podman: Podman,
    tag: str,
    *,
    context: Path = REPO,
    no_cache: bool = False,
    base: str | None = None,
) -> float:
    """Build the image at context into tag; the seconds it took."""
    base = base or base_image(podman)
    extra = ["--no-cache"] if no_cache else []
    started = time.monotonic()
    podman.run(*build_arguments(base, tag, context, extra), timeout=BUILD_TIMEOUT)
    return time.monotonic() - started
