"""``python -m northflank_build.emulator``: serve the emulated Northflank API until SIGINT/SIGTERM.

The first line printed is always ``Northflank API emulator listening on http://HOST:PORT``, so a
script can read the address from it when it asked for port 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .builds import plan_schedule
from .config import (
    DEFAULT_PHASES,
    LIST_ORDERS,
    LOG_ENVELOPES,
    OUTCOMES,
    ConfigError,
    EmulatorConfig,
    load_config,
)
from .faults import FaultError, parse_fault_option
from .server import Emulator

CONTROL_ROUTES = "GET /_emulator/requests, GET /_emulator/builds, POST /_emulator/reset, "
CONTROL_ROUTES += "POST /_emulator/faults, POST /_emulator/builds"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; --config first, then each other option overrides it."""
    parser = argparse.ArgumentParser(
        prog="python -m northflank_build.emulator",
        description="Serve a local emulator of the Northflank build API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--config", help="world to serve, a .yml/.yaml or .json file")
    parser.add_argument("--token", help="the one full-access API token (default demo-token)")
    parser.add_argument("--outcome", choices=OUTCOMES, help="outcome of every build")
    parser.add_argument(
        "--build-seconds",
        type=float,
        help="how long every build lasts, its phases keeping their proportions",
    )
    parser.add_argument("--rate-limit", type=int, help="requests per token per window")
    parser.add_argument("--rate-window", type=float, help="rate-limit window in seconds")
    parser.add_argument(
        "--list-order", choices=LIST_ORDERS, help="order of the builds list (newest-first)"
    )
    parser.add_argument(
        "--log-envelope", choices=LOG_ENVELOPES, help="shape of a build-logs answer (list)"
    )
    parser.add_argument(
        "--log-window", type=float, help="seconds a log range covers from one end (1800)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="queue faults, e.g. 'POST build=reset-after,ok' (repeatable)",
    )
    return parser.parse_args(argv)


def configure(args: argparse.Namespace) -> EmulatorConfig:
    """The config the options describe; raises ConfigError or FaultError."""
    config = load_config(args.config) if args.config else EmulatorConfig()
    if args.token:
        config.token = args.token
    if args.rate_limit is not None:
        config.rate_limit = args.rate_limit
    if args.rate_window is not None:
        config.rate_window = args.rate_window
    if args.list_order:
        config.list_order = args.list_order
    if args.log_envelope:
        config.log_envelope = args.log_envelope
    if args.log_window is not None:
        config.log_window = args.log_window
    if args.build_seconds is not None and args.build_seconds < 0:
        raise ConfigError("--build-seconds must not be negative")
    for services in config.projects.values():
        for service in services.values():
            if args.outcome:
                service.outcome = args.outcome
            if args.build_seconds is not None:
                phases = service.phases if sum(service.phases.values()) else DEFAULT_PHASES
                share = args.build_seconds / sum(phases.values())
                service.phases = {phase: s * share for phase, s in phases.items()}
    for option in args.fault:
        endpoint, faults = parse_fault_option(option)
        config.faults.setdefault(endpoint, []).extend(faults)
    config.__post_init__()  # check the overridden values as a fresh config would be
    return config


def describe(config: EmulatorConfig) -> list[str]:
    """The short list of tokens, projects and services printed after the first line."""
    lines = [f"  token: {', '.join(config.tokens)}"]
    if config.read_only_tokens:
        lines.append(f"  read-only tokens: {', '.join(config.read_only_tokens)}")
    if config.team_id:
        lines.append(f"  team: {config.team_id}")
    for project_id, services in config.projects.items():
        lines.append(f"  project {project_id}:")
        for service_id, service in services.items():
            if service.type == "deployment":
                lines.append(f"    {service_id}: deployment (cannot be built)")
                continue
            source: str = service.build_source
            if service.repository:
                source += f" {service.repository}"
            if service.type == "combined":
                source += f" (branch {service.branch or 'main'})"
            schedule = plan_schedule(service.phases, service.outcome_of(0), None)
            seconds = schedule[-1][2] / 1000 if schedule else 0
            outcome = (
                service.outcome if isinstance(service.outcome, str) else "/".join(service.outcome)
            )
            lines.append(
                f"    {service_id}: {service.type}, {source}, builds {outcome} in {seconds:g} s"
            )
            if service.external_builds:
                count = len(service.external_builds)
                lines.append(f"      plus {count} build(s) started outside the API")
    if config.list_order != "newest-first":
        lines.append(f"  builds list order: {config.list_order}")
    if config.log_envelope != "list" or config.log_window != 1800:
        window = f"{config.log_window:g} s"
        lines.append(f"  build logs: {config.log_envelope} envelope, {window} range window")
    lines.append(f"  control: {CONTROL_ROUTES}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; 0 on a clean stop, 2 on a bad option or config."""
    args = parse_args(argv)
    try:
        emulator = Emulator(configure(args))
        url = emulator.start(args.host, args.port)
    except (ConfigError, FaultError, OSError) as error:
        print(f"northflank emulator: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"Northflank API emulator listening on {url}", flush=True)
    print("\n".join(describe(emulator.config)), flush=True)
    # Short waits so the signal handler runs promptly in the main thread.
    while not stop.wait(0.2):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
