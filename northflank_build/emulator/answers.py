"""HTTP answers as plain values, and the API's error body."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field


class RequestError(Exception):
    """A request the API refuses: HTTP status, message for the error body and its details."""

    def __init__(self, status: int, message: str, details: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details if details is not None else {}


@dataclass
class Answer:
    """One HTTP answer: status, body bytes and headers (Content-Length is added when sent)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(status: int, payload: object, headers: dict[str, str] | None = None) -> Answer:
    """A JSON answer."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Answer(status, body, {"Content-Type": "application/json", **(headers or {})})


def error_answer(
    status: int, message: str, details: object = None, headers: dict[str, str] | None = None
) -> Answer:
    """Northflank's error body: {"error": {"status", "message", "id", "details"}}."""
    error = {
        "status": status,
        "message": message,
        "id": secrets.token_hex(12),
        "details": details if details is not None else {},
    }
    return json_answer(status, {"error": error}, headers)


def refused(error: RequestError, headers: dict[str, str] | None = None) -> Answer:
    """The error answer for a refused request."""
    return error_answer(error.status, error.message, error.details, headers)
