"""The request log: every /v1 request as the emulator received it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


class Headers(Mapping[str, str]):
    """Request headers with case-insensitive lookup, keeping the names as sent."""

    def __init__(self, pairs: Mapping[str, str] | None = None) -> None:
        self._items = {name.lower(): (name, value) for name, value in (pairs or {}).items()}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass
class RecordedRequest:
    """One request: path without query, query as a dict, body parsed when it is JSON."""

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    raw_body: bytes
    at: float
    authorized: bool = False
    body: object = field(init=False)

    def __post_init__(self) -> None:
        try:
            self.body = json.loads(self.raw_body) if self.raw_body else None
        except ValueError:
            self.body = None

    @property
    def token(self) -> str | None:
        """The bearer token sent, if any."""
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def as_json(self) -> dict[str, object]:
        """The request for GET /_emulator/requests, with the Authorization value masked."""
        headers = {
            name: ("Bearer ***" if name.lower() == "authorization" else value)
            for name, value in self.headers.items()
        }
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": headers,
            "body": self.body,
            "rawBody": self.raw_body.decode("utf-8", "replace"),
            "at": self.at,
            "authorized": self.authorized,
        }
