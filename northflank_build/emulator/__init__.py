"""A local emulator of the part of the Northflank API that starts and follows service builds.

A product of its own: the tests, ``make demo``, the benchmarks and users' own pipelines run
against it. It shares no code with the client (it validates request bodies with its own
hand-written rules) so that a mistake in the client is not hidden by the same mistake here.

In process::

    with Emulator(EmulatorConfig(rate_limit=5)) as emu:   # or Emulator() for the default world
        requests.get(f"{emu.url}/v1/projects/demo-project/services/web", headers=...)
        emu.requests, emu.builds("demo-project", "web"), emu.add_faults("POST build", ["429"])

As a command: ``python -m northflank_build.emulator --port 8080 [--config world.yml]``.
Config format: see config.py (and demo.yml); fault strings: see faults.py.
"""

from .config import ConfigError, EmulatorConfig, PastBuild, ServiceConfig, load_config
from .faults import Fault, FaultError
from .recording import RecordedRequest
from .server import Emulator

__all__ = [
    "ConfigError",
    "Emulator",
    "EmulatorConfig",
    "Fault",
    "FaultError",
    "PastBuild",
    "RecordedRequest",
    "ServiceConfig",
    "load_config",
]
