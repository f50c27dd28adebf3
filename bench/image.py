"""Benchmark: the image: its size, its build time, a trigger-only run in it, and each CI's cancel.

`python bench/image.py [--runs N] [--cancels N] [--no-build-times]` (`make bench` runs it). It
builds the image with podman from the Dockerfile, on the stand-in base (tests/podman.py says how
and why), as localhost/nfba-action:bench-<checkout>, then prints, as Markdown:

1. the image's size: uncompressed, and each layer uncompressed and gzip-compressed (level 6, as a
   push compresses), the project's own layers apart from the base's; then what fills the
   project's layers, largest first;
2. `podman build` wall time with the layer cache empty (the stand-in base cached, as CI keeps
   its base) and full;
3. the median wall time of a trigger-only run started as GitHub starts it, `podman run`, next
   to the same program run on the host with the same environment;
4. each CI's cancel, re-enacted as tests/ci_runs.py describes: from the CI's first move to the
   abort reaching the emulator and to the step's end, against the moment that CI kills.

Once the image is built (its build reaches the package mirrors), only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from northflank_build.emulator import Emulator, EmulatorConfig, ServiceConfig  # noqa: E402
from tests import podman as engine  # noqa: E402
from tests.ci_runs import (  # noqa: E402
    GITHUB_SIGINT_TIMEOUT,
    GITLAB_STOP_TIMEOUT,
    GITLAB_TERM_PASS,
    JENKINS_REMOTE_TIMEOUT,
    AzureContainerJob,
    GithubStep,
    GitlabJob,
    JenkinsAgent,
    Stopped,
    remove,
    until,
)

TOKEN = "bench-token-0123456789"
PROJECT = "bench-project"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
MB = 1_000_000


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def world() -> EmulatorConfig:
    quick = {"QUEUED": 0.1, "CLONING": 0.1, "BUILDING": 0.3, "UPLOADING": 0.1}
    slow = {"QUEUED": 0.2, "CLONING": 0.2, "BUILDING": 600.0, "UPLOADING": 0.1}
    services = {
        "api": ServiceConfig("build", "https://github.com/acme/api", phases=quick),
        "api-slow": ServiceConfig("build", "https://github.com/acme/api", phases=slow),
    }
    return EmulatorConfig(token=TOKEN, projects={PROJECT: services})


# -- 1. size ------------------------------------------------------------------------------------


@dataclass
class Layer:
    """One layer: what made it, its sizes, and the largest groups of files in it."""

    created_by: str
    size: int
    gzip: int
    base: bool
    groups: collections.Counter[str] = field(default_factory=collections.Counter)


def gzip_size(path: Path) -> int:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    size = 0
    with path.open("rb") as blob:
        while chunk := blob.read(1 << 20):
            size += len(compressor.compress(chunk))
    return size + len(compressor.flush())


def group(name: str) -> str:
    """Where a file belongs, in words: a dependency, the program, a stdlib package's bytecode."""
    parts = name.split("/")
    if parts[:2] == ["app", "lib"] and len(parts) > 3:
        top = parts[2]
        if top.endswith(".dist-info"):
            return "dependencies' metadata (dist-info)"
        return f"dependency {top.removesuffix('.py')}"
    if parts[0] == "app":
        return "the program (/app)"
    version = next((i for i, part in enumerate(parts) if part.startswith("python3")), None)
    if "__pycache__" in parts and version is not None:
        top = parts[version + 1]
        if top in ("site-packages", "dist-packages"):
            top = parts[version + 2]
        return "bytecode of " + ("top-level modules" if top == "__pycache__" else top)
    return "/".join(parts[:3])


def layers(podman: engine.Podman, image: str, base: str) -> list[Layer]:
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "image"
        podman.run("save", "--format", "docker-dir", "--output", str(saved), image, timeout=600)
        manifest = json.loads((saved / "manifest.json").read_text(encoding="utf-8"))
        config_blob = saved / manifest["config"]["digest"].split(":")[1]
        config = json.loads(config_blob.read_text(encoding="utf-8"))
        history = [h for h in config["history"] if not h.get("empty_layer")]
        base_ids = set(
            json.loads(podman.run("inspect", "--format", "{{json .RootFS.Layers}}", base).stdout)
        )
        found = []
        for entry, diff_id, blob in zip(
            history, config["rootfs"]["diff_ids"], manifest["layers"], strict=True
        ):
            path = saved / blob["digest"].split(":")[1]
            layer = Layer(entry.get("created_by", ""), path.stat().st_size, gzip_size(path), False)
            layer.base = diff_id in base_ids
            if not layer.base:
                with tarfile.open(path) as tar:
                    for member in tar:
                        if member.isfile():
                            layer.groups[group(member.name)] += member.size
            found.append(layer)
        return found


def instruction(created_by: str) -> str:
    text = created_by.split("/bin/sh -c ", 1)[-1].replace("#(nop) ", "").strip()
    return " ".join(text.split())[:70]


def size_report(podman: engine.Podman, image: str, base: str) -> list[str]:
    found = layers(podman, image, base)
    ours = [layer for layer in found if not layer.base]
    bytecode = [
        layer
        for layer in ours
        if "compileall" in layer.created_by and "/app" not in layer.created_by
    ]
    total = sum(layer.size for layer in found)
    lines = [
        f"Image: {total / MB:.1f} MB uncompressed, "
        f"{sum(layer.gzip for layer in found) / MB:.1f} MB gzip, {len(found)} layers; "
        f"the project's layers {sum(layer.size for layer in ours) / MB:.2f} MB "
        f"({sum(layer.gzip for layer in ours) / MB:.2f} MB gzip).\n",
        "| layer | made by | uncompressed | gzip |",
        "|---|---|---|---|",
    ]
    for number, layer in enumerate(found, 1):
        whose = "base" if layer.base else "project"
        lines.append(
            f"| {number} ({whose}) | `{instruction(layer.created_by)}` "
            f"| {layer.size / MB:.2f} MB | {layer.gzip / MB:.2f} MB |"
        )
    without = sum(layer.size for layer in ours) - sum(layer.size for layer in bytecode)
    verdict = "met" if without <= 12 * MB else "NOT met"
    lines.append(
        f"\n- goal: the project's layers at most 12 MB without the stdlib's bytecode: "
        f"{without / MB:.2f} MB ({verdict})"
    )
    groups: collections.Counter[str] = collections.Counter()
    for layer in ours:
        groups.update(layer.groups)
    lines += [
        "\nWhat fills the project's layers (files, uncompressed):\n",
        "| what | size |",
        "|---|---|",
    ]
    lines += [f"| {name} | {size / MB:.2f} MB |" for name, size in groups.most_common(18)]
    return lines


# -- 2. build time ------------------------------------------------------------------------------


def build_report(podman: engine.Podman, tag: str) -> list[str]:
    log("building with an empty layer cache")
    cold = engine.build(podman, tag, no_cache=True)
    log("building again with the cache full")
    warm = engine.build(podman, tag)
    return [
        f"- `podman build`, layer cache empty (base cached): {cold:.1f} s",
        f"- `podman build`, cache full (nothing changed): {warm:.1f} s",
    ]


# -- 3. a trigger-only run -----------------------------------------------------------------------


def inputs(emulator: Emulator, service: str, **extra: str) -> dict[str, str]:
    return {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": service,
        "api-url": emulator.url,
        "service-type": "build",
        **extra,
    }


GITHUB = {"GITHUB_SHA": SHA, "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main"}


def container_run(
    podman: engine.Podman, image: str, emulator: Emulator, folder: Path, *, floor: bool = False
) -> float:
    """A trigger-only `podman run` as GitHub starts it; with floor, /bin/true in its place."""
    step = GithubStep(podman, image, folder, inputs(emulator, "api", wait="false"), github=GITHUB)
    argv = step.argv()
    if floor:
        argv[-1:-1] = ["--entrypoint", "/bin/true"]
    started = time.perf_counter()
    done = subprocess.run(argv, env=step.env(), capture_output=True, timeout=120, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0 or (
        not floor and "result<<" not in step.output.read_text(encoding="utf-8")
    ):
        raise SystemExit(f"the container run failed: {done.stdout[-600:]!r}")
    return wall


def host_run(emulator: Emulator, folder: Path) -> float:
    """The same program, environment and files, started on the host."""
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / "output"
    output.touch()
    env = {"PATH": "/usr/bin:/bin", "GITHUB_ACTIONS": "true", "CI": "true", **GITHUB}
    env |= {"GITHUB_OUTPUT": str(output), "GITHUB_EVENT_NAME": "push", "HOME": str(folder)}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    env |= {f"INPUT_{k.upper()}": v for k, v in inputs(emulator, "api", wait="false").items()}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(REPO / "entrypoint.py")],
        env=env,
        cwd=folder,
        capture_output=True,
        timeout=60,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0 or "result<<" not in output.read_text(encoding="utf-8"):
        raise SystemExit(f"the host run failed: {done.stdout[-600:]!r}")
    return wall


def run_report(podman: engine.Podman, image: str, emulator: Emulator, runs: int) -> list[str]:
    import compileall

    compileall.compile_dir(REPO / "northflank_build", quiet=1)  # as in the image
    series: dict[str, list[float]] = {"container": [], "floor": [], "host": []}
    with tempfile.TemporaryDirectory() as folder:
        for number in range(-1, runs):  # one warm-up each, alternating
            walls = {
                "container": container_run(podman, image, emulator, Path(folder) / f"c{number}"),
                "floor": container_run(
                    podman, image, emulator, Path(folder) / f"f{number}", floor=True
                ),
                "host": host_run(emulator, Path(folder) / f"h{number}"),
            }
            if number >= 0:
                for name, wall in walls.items():
                    series[name].append(wall)
    medians = {name: statistics.median(values) for name, values in series.items()}
    rows = {
        "container": "`podman run`, as GitHub starts it",
        "floor": "the same `podman run` with /bin/true as the entry point",
        "host": "the same program on the host",
    }
    lines = ["| trigger-only run | runs | median wall | min-max |", "|---|---|---|---|"]
    for name, label in rows.items():
        values = series[name]
        lines.append(
            f"| {label} | {runs} | {medians[name]:.3f} s | {min(values):.3f}-{max(values):.3f} s |"
        )
    verdict = "met" if medians["container"] <= 0.40 else "NOT met"
    lines.append(
        f"\n- goal: a trigger-only `podman run` at most 0.40 s median: "
        f"{medians['container']:.3f} s ({verdict}); podman's own part (the /bin/true run) "
        f"{medians['floor']:.3f} s, the program's {medians['container'] - medians['floor']:.3f} s"
    )
    return lines


# -- 4. cancel, per CI ---------------------------------------------------------------------------


@dataclass
class CancelCase:
    """One CI's way to cancel, and how many seconds it allows before its kill."""

    name: str
    how: str
    kills_after: str
    run: Callable[[engine.Podman, str, Emulator, Path], tuple[Stopped, float]]
    to_abort: list[float] = field(default_factory=list)
    to_end: list[float] = field(default_factory=list)
    killed: int = 0
    not_aborted: int = 0


def first_delete(emulator: Emulator) -> float | None:
    times = [r.at for r in emulator.requests if r.method == "DELETE"]
    return times[0] if times else None


def started(emulator: Emulator) -> bool:
    return bool(emulator.builds(PROJECT, "api-slow"))


def github_cancel(
    stop: bool,
) -> Callable[[engine.Podman, str, Emulator, Path], tuple[Stopped, float]]:
    def run(
        podman: engine.Podman, image: str, emulator: Emulator, folder: Path
    ) -> tuple[Stopped, float]:
        given = inputs(emulator, "api-slow", **{"poll-interval": "30"})
        step = GithubStep(podman, image, folder, given, github=GITHUB)
        process = step.start()
        try:
            until(lambda: "build-id<<" in step.output.read_text(encoding="utf-8"), "started")
            moment = time.monotonic()
            stopped = step.stop(process) if stop else step.cancel(process)
        finally:
            remove(podman, step.name)
        return stopped, moment

    return run


def northflank(emulator: Emulator) -> dict[str, str]:
    return {
        "NORTHFLANK_API_TOKEN": TOKEN,
        "NORTHFLANK_PROJECT_ID": PROJECT,
        "NORTHFLANK_SERVICE_ID": "api-slow",
        "NORTHFLANK_API_URL": emulator.url,
        "NORTHFLANK_SERVICE_TYPE": "build",
        "NORTHFLANK_POLL_INTERVAL": "30",
    }


def gitlab_cancel(
    native: bool,
) -> Callable[[engine.Podman, str, Emulator, Path], tuple[Stopped, float]]:
    def run(
        podman: engine.Podman, image: str, emulator: Emulator, folder: Path
    ) -> tuple[Stopped, float]:
        variables = {**northflank(emulator), "CI": "true", "GITLAB_CI": "true"}
        variables |= {"CI_COMMIT_SHA": SHA, "CI_COMMIT_BRANCH": "main"}
        job = GitlabJob(podman, image, folder, variables, ["northflank-build"])
        process = job.start()
        try:
            until(lambda: started(emulator) and "Build " in job.log(), "started")
            moment = time.monotonic()
            stopped = job.cancel(process, native_stop=native)
        finally:
            remove(podman, job.name)
        return stopped, moment

    return run


def jenkins_cancel(
    podman: engine.Podman, image: str, emulator: Emulator, folder: Path
) -> tuple[Stopped, float]:
    agent = JenkinsAgent(podman, image, folder)
    try:
        agent.start()
        env = {**northflank(emulator), "JENKINS_URL": "https://jenkins.example.com/"}
        env |= {"BRANCH_NAME": "main", "GIT_COMMIT": SHA}
        step = agent.sh("exec northflank-build\n", env)
        until(lambda: started(emulator) and "Build " in step.log(), "started")
        moment = time.monotonic()
        return agent.stop_step(step), moment
    finally:
        remove(podman, agent.name)


def azure_cancel(
    podman: engine.Podman, image: str, emulator: Emulator, folder: Path
) -> tuple[Stopped, float]:
    job = AzureContainerJob(podman, image, folder)
    try:
        job.start()
        env = {**northflank(emulator), "TF_BUILD": "True", "BUILD_SOURCEVERSION": SHA}
        env |= {"BUILD_SOURCEBRANCH": "refs/heads/main"}
        process = job.script("northflank-build\n", env)
        until(lambda: started(emulator), "started")
        time.sleep(0.5)
        moment = time.monotonic()
        return job.cancel(process), moment
    finally:
        job.remove()


def cancel_cases() -> list[CancelCase]:
    return [
        CancelCase(
            "GitHub Actions",
            "SIGINT to `docker run`, passed to PID 1",
            f"SIGTERM at {GITHUB_SIGINT_TIMEOUT} s, kill at 10 s",
            github_cancel(stop=False),
        ),
        CancelCase(
            "a `docker stop`", "SIGTERM to PID 1", "SIGKILL at 10 s", github_cancel(stop=True)
        ),
        CancelCase(
            "GitLab CI (Docker executor)",
            "`docker exec` SIGTERM to every process but PID 1, then `docker stop`",
            f"pass ends by {GITLAB_TERM_PASS:.0f} s; SIGKILL {GITLAB_STOP_TIMEOUT} s after stop",
            gitlab_cancel(native=False),
        ),
        CancelCase(
            "GitLab CI, FF_USE_NATIVE_CONTAINER_STOP",
            "`docker stop`: SIGTERM to PID 1",
            f"SIGKILL at {GITLAB_STOP_TIMEOUT} s",
            gitlab_cancel(native=True),
        ),
        CancelCase(
            "Jenkins (docker agent)",
            "`docker exec ps`, `docker exec kill` of the step's processes",
            f"step failed at {JENKINS_REMOTE_TIMEOUT:.0f} s, then `docker stop --time=1`",
            jenkins_cancel,
        ),
        CancelCase(
            "Azure Pipelines (container job)",
            "SIGINT, SIGTERM, kill to the `docker exec` client: none reaches the container",
            "`docker rm --force` when the job ends",
            azure_cancel,
        ),
    ]


def figures(values: Sequence[float]) -> str:
    if not values:
        return "never | -"
    return f"{statistics.median(values):.2f} s | {max(values):.2f} s"


def cancel_report(podman: engine.Podman, image: str, runs: int) -> list[str]:
    lines = [
        "| CI | how it cancels | when it kills | runs | abort received: median | max "
        "| step ended: median | max | killed by the CI | build left running |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cancel_cases():
        log(f"cancel: {case.name}")
        for number in range(runs):
            with Emulator(world()) as emulator, tempfile.TemporaryDirectory() as folder:
                stopped, moment = case.run(podman, image, emulator, Path(folder) / str(number))
                deleted = first_delete(emulator)
                if deleted is None:
                    case.not_aborted += 1
                else:
                    case.to_abort.append(deleted - moment)
                case.to_end.append(stopped.seconds)
                case.killed += stopped.killed
        lines.append(
            f"| {case.name} | {case.how} | {case.kills_after} | {runs} | {figures(case.to_abort)} "
            f"| {figures(case.to_end)} | {case.killed} | {case.not_aborted} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="trigger-only runs each (default 15)")
    parser.add_argument("--cancels", type=int, default=3, help="cancels per CI (default 3)")
    parser.add_argument("--no-build-times", action="store_true", help="build once, time nothing")
    args = parser.parse_args()
    problem = engine.problem()
    if problem is not None:
        print(f"## The image\n\nNot measured: {problem}")
        return 0
    started_at = time.monotonic()
    podman = engine.engine()
    base = engine.base_image(podman)
    tag = engine.image_tag("bench")
    whose = " (the stand-in: tests/standin/build.sh)" if "standin" in base else ""
    print(f"## The image, built with podman on {base}{whose}\n")
    if args.no_build_times:
        engine.build(podman, tag)
    else:
        print("\n".join(build_report(podman, tag)) + "\n", flush=True)
    print("\n".join(size_report(podman, tag, base)) + "\n", flush=True)
    with Emulator(world()) as emulator:
        print(f"## A trigger-only run: {args.runs} runs each, alternating\n")
        print("\n".join(run_report(podman, tag, emulator, args.runs)) + "\n", flush=True)
    print(f"## Cancel, as each CI cancels: {args.cancels} runs each (tests/ci_runs.py)\n")
    print("Seconds from the CI's first move.\n")
    print("\n".join(cancel_report(podman, tag, args.cancels)) + "\n")
    log(f"image benchmark finished in {time.monotonic() - started_at:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
