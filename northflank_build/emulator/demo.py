"""`make demo`: start the emulator, run the action against it as GitHub would, show the result.

Runs the program as a separate process, exactly as the runner runs the container: inputs as
INPUT_* variables, a pull request event payload, and the GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
files it writes, which are shown afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .server import Emulator

HEAD_SHA = "5d3c0e9a7b1f4e2d8c6a0b9f3e1d7c5a2b4f6e8d"
MERGE_SHA = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"


def github_environment(folder: Path, url: str) -> dict[str, str]:
    """What the runner gives a container action for a pull_request event."""
    event = {
        "number": 42,
        "pull_request": {
            "number": 42,
            "head": {"sha": HEAD_SHA, "ref": "feature/login", "repo": {"full_name": "acme/api"}},
            "base": {"ref": "main", "repo": {"full_name": "acme/api"}},
        },
        "repository": {"full_name": "acme/api"},
    }
    (folder / "event.json").write_text(json.dumps(event), encoding="utf-8")
    for name in ("output", "summary"):
        (folder / name).touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    env.update(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(folder / "event.json"),
            "GITHUB_SHA": MERGE_SHA,
            "GITHUB_REF": "refs/pull/42/merge",
            "GITHUB_REPOSITORY": "acme/api",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "1",
            "GITHUB_OUTPUT": str(folder / "output"),
            "GITHUB_STEP_SUMMARY": str(folder / "summary"),
            "GITHUB_WORKSPACE": str(folder),
            "INPUT_API-TOKEN": "demo-token",
            "INPUT_PROJECT-ID": "demo-project",
            "INPUT_SERVICE-ID": "api",
            "INPUT_API-URL": url,
            "INPUT_BUILD-ARGUMENTS": "NODE_ENV=production",
            "INPUT_OUTPUTS-FILE": str(folder / "outputs.json"),
        }
    )
    return env


def main() -> int:
    with Emulator() as emulator, tempfile.TemporaryDirectory() as temp:
        url = emulator.start()
        folder = Path(temp)
        print(f"1. The Northflank API emulator listens on {url}")
        print("2. The action runs for pull request #42 (head commit", HEAD_SHA[:7], end="")
        print(f", GitHub's merge commit {MERGE_SHA[:7]}):\n", flush=True)
        process = subprocess.run(
            [sys.executable, "-m", "northflank_build"],
            env=github_environment(folder, url),
            check=False,
        )
        print(f"\n3. The step exited with {process.returncode}. What the API received:")
        for request in emulator.requests:
            body = f" {json.dumps(request.body)}" if request.body else ""
            print(f"   {request.method} {request.path}{body}")
        outputs = json.loads((folder / "outputs.json").read_text(encoding="utf-8"))
        print("\n4. The step's outputs (also in GITHUB_OUTPUT):")
        for name, value in outputs.items():
            if name not in ("request", "build", "builds"):
                print(f"   {name:<17} {value}")
        print("\n5. The job summary (GITHUB_STEP_SUMMARY):\n")
        print((folder / "summary").read_text(encoding="utf-8"))
        return process.returncode


if __name__ == "__main__":
    sys.exit(main())
