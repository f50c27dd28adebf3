"""What hostile input costs: masking a build file of many lines, and reading an HTML error page.

Prints, in process and without the network: the time to register a build file of N lines as
secrets and to mask 10 000 log lines of 100 characters with them, and the time to turn an HTML
error page of N bytes into the API error the user reads. A series stops at the first case over
CUTOFF seconds (the cost before the fix grew quadratically).

    python bench/hostile.py                    # this checkout
    python bench/hostile.py --code OTHER_REPO  # another checkout of the program, for comparison
"""

from __future__ import annotations

import argparse
import io
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CUTOFF = 30.0
LINES = (4_000, 16_000, 64_000)
PAGES = (
    ("<title> repeated", "<title>", (64 << 10, 256 << 10, 1 << 20, 8 << 20)),
    ("< repeated", "<", (64 << 10, 256 << 10, 1 << 20, 8 << 20)),
)


def timed(work: Callable[[], Any]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def masking(count: int, prefix: str = "") -> tuple[float, float]:
    """Seconds to register a file of `count` lines, and to mask 10 000 lines of a build log."""
    from northflank_build.console import GitHubConsole
    from northflank_build.settings import SecretFile

    lines = [prefix + secrets.token_hex(1 + n % 12) + "-x" for n in range(count)]
    data = ("\n".join(lines) + "\n").encode()
    console = GitHubConsole(io.StringIO())
    file = SecretFile(data)
    values = [data.decode(), file.body()["data"]]
    if not hasattr(console, "masker"):  # before the fix the settings gave every line on its own
        values = [values[1], *lines]

    def register_all() -> None:
        for value in values:
            console.add_secret(value)

    register = timed(register_all)
    log = [
        f"#{n} step {n % 9}/9: RUN npm ci --no-audit, {lines[n % count][:-3]} done in 2.1 s"
        for n in range(10_000)
    ]
    mask = timed(lambda: [console.redact(line) for line in log])
    return register, mask


def page(body: str) -> float:
    """Seconds to make the API error for a 502 answer with this HTML body."""
    import requests

    from northflank_build import client

    response = requests.Response()
    response.status_code = 502
    response._content = body.encode()
    response.encoding = "utf-8"
    response.headers["Content-Type"] = "text/html"
    return timed(lambda: client._api_error("GET", "/v1/x", response, None, 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent)
    code = parser.parse_args().code.resolve()
    sys.path.insert(0, str(code))
    print(f"code: {code}")
    print("| build file lines | register (s) | mask 10 000 log lines (s) |")
    print("|---|---|---|")
    for prefix in ("", "export SECRET_"):
        for count in LINES:
            register, mask = masking(count, prefix)
            shared = f", all starting {prefix!r}" if prefix else ""
            print(f"| {count}{shared} | {register:.2f} | {mask:.2f} |")
            if register + mask > CUTOFF:
                break
    print()
    print("| error page | bytes | seconds |")
    print("|---|---|---|")
    for name, unit, sizes in PAGES:
        for size in sizes:
            seconds = page(unit * (size // len(unit)))
            print(f"| {name} | {size} | {seconds:.3f} |")
            if seconds > CUTOFF:
                break


if __name__ == "__main__":
    main()
