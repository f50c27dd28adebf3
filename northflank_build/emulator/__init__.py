"""A local emulator of the part of the Northflank API that starts and follows service builds.

A product of its own: the tests, ``make demo``, the benchmarks and users' own pipelines run
against it. It shares no code with the client (it validates request bodies with its own
hand-written rules) so that a mistake in the client is not hidden by the same mistake here.

In process::

    with Emulator(EmulatorConfig(rate_limit=5)) as emu:   # or Emulator() for the default world
        requests.get(f"{emu.url}/v1/projects/demo-project/services/web", headers=...)
        emu.requests, emu.builds("demo-project", "web"), emu.add_faults("POST build", ["429"])
        emu.add_build("demo-project", "web", sha=..., elapsed=2.0)  # a "build latest" build

On a clock the test drives (everything time-based reads it; fault delays stay real)::

    virtual = VirtualClock()
    with Emulator(config, clock=virtual.clock()) as emu:
        ...; virtual.sleep(600)  # ten minutes pass at once, for the emulator and the test

As a command: ``python -m northflank_build.emulator --port 8080 [--config world.yml]``.
Config format: see config.py (and demo.yml); fault strings: see faults.py.
"""

from .clock import Clock, VirtualClock
from .config import (
    ConfigError,
    EmulatorConfig,
    ExternalBuild,
    PastBuild,
    ServiceConfig,
    load_config,
)
from .faults import Fault, FaultError
from .recording import RecordedRequest
from .server import Emulator

__all__ = [
    "Clock",
    "ConfigError",
    "Emulator",
    "EmulatorConfig",
    "ExternalBuild",
    "Fault",
    "FaultError",
    "PastBuild",
    "RecordedRequest",
    "ServiceConfig",
    "VirtualClock",
    "load_config",
]
