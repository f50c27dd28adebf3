"""Requests sent from worker threads, so that a signal interrupts the wait for an answer.

A transport adapter, requests' own extension point, wraps each adapter of the client's session:
the client stays unaware of signals, and every request it sends can be interrupted.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import BaseAdapter

from northflank_build.signals import Signals


class WorkerThreadAdapter(BaseAdapter):
    """Sends through another adapter from a worker thread, while the main thread waits."""

    def __init__(self, inner: BaseAdapter, signals: Signals) -> None:
        super().__init__()
        self.inner = inner
        self.signals = signals

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        return self.signals.call(lambda: self.inner.send(request, *args, **kwargs))

    def close(self) -> None:
        self.inner.close()


def send_from_worker_threads(session: requests.Session, signals: Signals) -> None:
    """Make every request of the session interruptible by a signal, keeping its adapters."""
    for prefix, adapter in list(session.adapters.items()):
        session.mount(prefix, WorkerThreadAdapter(adapter, signals))
