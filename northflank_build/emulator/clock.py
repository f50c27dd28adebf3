"""Time for the emulator: monotonic for the lifecycle, wall-clock milliseconds for the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class Clock:
    """Maps monotonic readings onto wall-clock epoch milliseconds, fixed at creation.

    Both sources can be replaced, e.g. by a virtual clock that tests share with the client.
    """

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._monotonic = monotonic
        self._mono0 = monotonic()
        self._wall0 = wall()

    def now(self) -> float:
        """The current monotonic reading."""
        return self._monotonic()

    def wall(self) -> float:
        """The current Unix time, on this clock."""
        return self._wall0 + (self._monotonic() - self._mono0)

    def ms(self, mono: float) -> int:
        """Wall-clock epoch milliseconds of a monotonic reading."""
        return round((self._wall0 + (mono - self._mono0)) * 1000)


def iso_from_ms(epoch_ms: int) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as Northflank writes timestamps."""
    seconds, millis = divmod(epoch_ms, 1000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def ms_from_iso(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 timestamp (UTC when no offset); raises ValueError."""
    # An unescaped "+" in a query string arrives as a space.
    moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)
