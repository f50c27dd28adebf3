"""A small Northflank API client: bearer auth, timeouts, rate-limit bookkeeping, clear errors.

It knows nothing of any CI system. Every answer's x-ratelimit-* headers are recorded, every
request is counted, and every failure becomes an ApiError with the API's own message.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from northflank_build import __version__
from northflank_build.errors import ApiError
from northflank_build.routes import service_path

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
HINTS = {
    400: "The API rejected the request: check the inputs named in the message",
    401: "Check api-token: it is missing, mistyped, expired or revoked",
    403: (
        "Check the token's permissions: starting a build needs Project > Services > Deployment > "
        "Deploy Build, reading one Project > Services > General > Read; organisation tokens "
        "also need team-id"
    ),
    404: "Check project-id and service-id (and team-id), and that the token's team owns them",
    409: "The service is not in a state to build: check it on Northflank",
    422: "The API rejected the request: check the inputs named in the message",
    429: "The token's rate limit (1000 requests an hour by default) is spent: wait for its reset",
}


@dataclass
class RateLimit:
    """The last x-ratelimit-* headers seen; None until an answer carried them."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None

    def update(self, headers: Any, now: float) -> None:
        for name, attr in (("x-ratelimit-limit", "limit"), ("x-ratelimit-remaining", "remaining")):
            value = _number(headers.get(name))
            if value is not None:
                setattr(self, attr, int(value))
        reset = _number(headers.get("x-ratelimit-reset"))
        if reset is not None:
            self.reset_at = now + reset

    def seconds_to_reset(self, now: float) -> float | None:
        return None if self.reset_at is None else max(0.0, self.reset_at - now)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """How reads are retried: attempts, and exponential backoff with full jitter."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 20.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        return rng() * min(self.cap, self.base * 2.0**attempt)


class Api:
    """The Northflank API for one token and one service."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        team_id: str | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.team_id = team_id
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.sleep = sleep
        self.requests_made = 0
        self.rate = RateLimit()
        self.deadline: float | None = None
        self.session = requests.Session()
        self.session.trust_env = (
            False  # a proxy or .netrc from the environment must not see the token
        )
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"northflank-build-action/{__version__}",
            }
        )

    # -- endpoints ---------------------------------------------------------------------------

    def path(self, project_id: str, service_id: str) -> str:
        return service_path(project_id, service_id, self.team_id)

    def get_service(self, project_id: str, service_id: str) -> dict[str, Any]:
        return self._data("GET", self.path(project_id, service_id))

    def start_build(self, project_id: str, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
        path = self.path(project_id, service_id) + "/build"
        return self._data("POST", path, body=body, retry=False)

    def get_build(self, project_id: str, service_id: str, build_id: str) -> dict[str, Any]:
        return self._data("GET", f"{self.path(project_id, service_id)}/build/{build_id}")

    def list_builds(
        self, project_id: str, service_id: str, per_page: int = 20, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        path = self.path(project_id, service_id) + "/build"
        data = self._data("GET", path, params={"per_page": str(per_page)}, timeout=timeout)
        builds = data.get("builds", [])
        return [b for b in builds if isinstance(b, dict)]

    def abort_build(
        self, project_id: str, service_id: str, build_id: str, timeout: float = 2.0
    ) -> None:
        path = f"{self.path(project_id, service_id)}/build/{build_id}"
        self._data("DELETE", path, retry=False, timeout=timeout)

    def build_logs(
        self, project_id: str, service_id: str, params: dict[str, str]
    ) -> list[dict[str, Any]]:
        path = self.path(project_id, service_id) + "/build-logs"
        data = self._send("GET", path, params=params)
        lines = data.get("data")
        return [line for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []

    # -- transport ---------------------------------------------------------------------------

    def _data(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        retry: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        answer = self._send(method, path, body=body, params=params, retry=retry, timeout=timeout)
        data = answer.get("data")
        if not isinstance(data, dict):
            raise ApiError(f"{method} {path} answered without a data object", status=200)
        return data

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        retry: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The decoded answer; reads are retried on network errors, 5xx and 429."""
        attempt = 0
        while True:
            try:
                return self._once(method, path, body=body, params=params, timeout=timeout)
            except ApiError as error:
                wait = self._retry_wait(error, attempt) if retry else None
                if wait is None:
                    raise
            attempt += 1
            self.sleep(wait)

    def _retry_wait(self, error: ApiError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not error.retryable or attempt + 1 >= self.retry.attempts:
            return None
        wait = self.retry.backoff(attempt)
        if error.status == 429:
            wait = max(wait, error.retry_after or 0.0)
        if self.deadline is not None and self.clock() + wait >= self.deadline:
            return None
        return wait

    def _timeout(self, timeout: float | None) -> tuple[float, float]:
        read = timeout if timeout is not None else READ_TIMEOUT
        if self.deadline is not None:
            read = max(1.0, min(read, self.deadline - self.clock()))
        return (min(CONNECT_TIMEOUT, read), read)

    def _once(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        timeout: float | None,
    ) -> dict[str, Any]:
        self.requests_made += 1
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=body,
                params=params,
                timeout=self._timeout(timeout),
                allow_redirects=False,
            )
        except requests.exceptions.ConnectionError as error:
            refused = "refused" in str(error).lower() or "name or service" in str(error).lower()
            raise _unreachable(method, path, error, refused=refused) from None
        except requests.exceptions.RequestException as error:
            raise _unreachable(method, path, error, refused=False) from None
        self.rate.update(response.headers, self.clock())
        return self._decode(method, path, response)

    def _decode(self, method: str, path: str, response: requests.Response) -> dict[str, Any]:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            raise ApiError(
                f"{method} {path} was redirected to {urlsplit(location).netloc or location!r}; "
                "the token is never sent elsewhere",
                status=status,
                hint="Check api-url: give the API's address itself",
            )
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if status == 200 and isinstance(payload, dict):
            return payload
        if status == 200:
            raise ApiError(
                f"{method} {path} answered with a body that is not JSON",
                status=status,
                retryable=True,
            )
        raise _api_error(method, path, response, payload)


def _unreachable(method: str, path: str, error: Exception, *, refused: bool) -> ApiError:
    kind = type(error).__name__
    return ApiError(
        f"{method} {path} failed: {kind}",
        hint="Check api-url and the network; the API could not be reached",
        retryable=True,
        never_sent=refused,
    )


def _api_error(method: str, path: str, response: requests.Response, payload: Any) -> ApiError:
    status = response.status_code
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and error.get("message"):
        message = str(error["message"])
        details = error.get("details")
        if details:
            message += " " + json.dumps(details, separators=(",", ":"))[:500]
        error_id = str(error["id"]) if error.get("id") else None
    else:
        text = " ".join(response.text.split())[:200] or response.reason or "no body"
        message = f"{method} {path}: {text}"
        error_id = None
    hint = HINTS.get(status, "The Northflank API failed; try again later" if status >= 500 else "")
    if status == 429:
        reset = response.headers.get("Retry-After") or response.headers.get("x-ratelimit-reset")
        if reset:
            hint += f" (in {reset} s)"
    return ApiError(
        message,
        status=status,
        error_id=error_id,
        hint=hint,
        retryable=status == 429 or status >= 500,
        retry_after=_number(response.headers.get("Retry-After")),
    )
