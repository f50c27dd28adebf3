"""A small Northflank API client: bearer auth, timeouts, safe retries, rate limits, clear errors.

It knows nothing of any CI system. Every answer's x-ratelimit-* headers are recorded, every
request is counted, and every failure becomes an ApiError with the API's own message. Reads are
retried on network errors, timeouts, 5xx and 429; writes never are (start.py decides about those).
The token goes to the api-url host only: redirects are never followed.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote as quote_segment
from urllib.parse import urlsplit

import requests
import urllib3

from northflank_build import __version__
from northflank_build.answers import (
    MAX_ANSWER,
    AnswerTimeout,
    AnswerTooLarge,
    BoundedAdapter,
    body_text,
    page_gist,
    parse_json,
)
from northflank_build.errors import ApiError, InputError
from northflank_build.model import Build, BuildPage, LogPage, Malformed, Service
from northflank_build.routes import service_path

T = TypeVar("T")

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
LOG_RETRY_BUDGET = 10.0  # seconds one log read may spend on retries
HINTS = {
    400: "The API rejected the request: check the inputs named in the message",
    401: "Check api-token: it is missing, mistyped, expired or revoked",
    403: (
        "Check the token's permissions: starting or aborting a build needs Project > Services > "
        "Deployment > Deploy Build (Project > Services > General > Update in newer API pages), "
        "reading one Project > Services > General > Read; organisation tokens also need team-id"
    ),
    404: "Check project-id and service-id (and team-id), and that the token's team owns them",
    409: "The service is not in a state to build: check it on Northflank",
    422: "The API rejected the request: check the inputs named in the message",
    429: "The token's rate limit (1000 requests an hour by default) is spent: wait for its reset",
}
EPOCH_THRESHOLD = 10**9  # an x-ratelimit-reset this large is a Unix time, not a count of seconds


@dataclass
class RateLimit:
    """The last x-ratelimit-* headers seen; None until an answer carried them."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None

    def update(self, headers: Mapping[str, str], now: float, wall: float | None = None) -> None:
        """Record an answer's headers, read at monotonic `now` and Unix time `wall`."""
        wall = time.time() if wall is None else wall
        for name, attr in (("x-ratelimit-limit", "limit"), ("x-ratelimit-remaining", "remaining")):
            value = _number(headers.get(name))
            if value is not None:
                setattr(self, attr, int(value))
        reset = reset_seconds(headers.get("x-ratelimit-reset"), wall)
        if reset is not None:
            self.reset_at = now + reset

    def seconds_to_reset(self, now: float) -> float | None:
        return None if self.reset_at is None else max(0.0, self.reset_at - now)


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value == value and abs(value) != float("inf") else None


def reset_seconds(text: str | None, wall: float) -> float | None:
    """Seconds until a rate-limit reset given as seconds to go or as a Unix time."""
    value = _number(text)
    if value is None or value < 0:
        return None
    return max(0.0, value - wall) if value >= EPOCH_THRESHOLD else value


def retry_after_seconds(text: str | None, wall: float) -> float | None:
    """Retry-After as seconds to wait: it is either a number of seconds or an HTTP date."""
    if not text:
        return None
    value = _number(text)
    if value is not None:
        return max(0.0, value)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - wall)


@dataclass(frozen=True)
class RetryPolicy:
    """How reads are retried: exponential backoff with full jitter, bounded in count and time."""

    attempts: int = 10
    base: float = 0.5
    cap: float = 30.0
    budget: float = 120.0  # seconds one call may spend before it gives up

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        return rng() * min(self.cap, self.base * 2.0**attempt)


@dataclass(frozen=True)
class Transport:
    """Timeouts, retries, CA bundle and proxy: the environment's say in how requests travel."""

    read_timeout: float = READ_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    ca_bundle: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Transport:
        """NORTHFLANK_READ_TIMEOUT, REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) and HTTPS_PROXY.

        Raises InputError naming the variable when one is not usable.
        """
        read = _seconds(env, "NORTHFLANK_READ_TIMEOUT", READ_TIMEOUT, 0.05, 600)
        bundle = None
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            if env.get(name, "").strip():
                bundle = env[name].strip()
                if not Path(bundle).exists():
                    raise InputError(name, f"CA bundle {bundle} does not exist")
                break
        proxy = _first(env, "HTTPS_PROXY", "https_proxy")
        if proxy and "://" not in proxy:
            proxy = "http://" + proxy
        no_proxy = _first(env, "NO_PROXY", "no_proxy")
        return cls(read, RetryPolicy(), bundle, https_proxy=proxy, no_proxy=no_proxy)

    def proxies(self, base_url: str) -> dict[str, str]:
        """The proxy for base_url: HTTPS only, through a CONNECT tunnel the proxy cannot read.

        Plain http:// (loopback only) never goes through a proxy, which would see the token.
        """
        if not self.https_proxy or not base_url.startswith("https://"):
            return {}
        if requests.utils.should_bypass_proxies(base_url, no_proxy=self.no_proxy):
            return {}
        return {"https": self.https_proxy}


def _first(env: Mapping[str, str], *names: str) -> str | None:
    return next((env[n].strip() for n in names if env.get(n, "").strip()), None)


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    value = _number(text)
    if value is None or not low <= value <= high:
        raise InputError(name, f"must be a number of seconds from {low:g} to {high:g}")
    return value


@dataclass(frozen=True)
class Limits:
    """How long one call may take and how often it is tried: given per call, never stored.

    deadline is a clock() reading past which no attempt is begun and no answer waited for;
    timeout is the most seconds one answer may take (the transport's read timeout otherwise).
    """

    deadline: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None


ONCE = RetryPolicy(attempts=1)
# Before the API has answered once, a refused connection or an unknown host is most likely a
# wrong api-url: a few quick attempts, then the error, not minutes of retries.
FIRST_CONTACT = RetryPolicy(attempts=3, budget=5.0)
# Logs never decide the result, so they are not worth a long wait: a few quick attempts.
LOG_RETRY = RetryPolicy(attempts=3, budget=LOG_RETRY_BUDGET)


@dataclass(frozen=True)
class ServiceRef:
    """The service a request is about; IDs are checked by the settings, so none alters a path."""

    project_id: str
    service_id: str


class Api:
    """The Northflank API for one token: its answers parsed into the values of model.py.

    It holds the connection and what it learns from answers (requests made, the rate limit, the
    API's clock); every limit on a call is passed to that call.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        team_id: str | None = None,
        transport: Transport | None = None,
        notify: Callable[[str], None] | None = None,
        debug: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.team_id = team_id
        self.transport = transport or Transport()
        self.notify = notify or (lambda text: None)
        self.debug = debug or (lambda text: None)
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.requests_made = 0
        self.answered = False  # whether any request of this run got an HTTP answer
        self.rate = RateLimit()
        self.server_offset: float | None = None  # the API's clock minus ours, from Date headers
        self.session = requests.Session()
        for prefix in ("https://", "http://"):
            self.session.mount(prefix, BoundedAdapter())
        # A .netrc would replace the token and an http proxy would read it, so the environment is
        # not trusted; the CA bundle and an HTTPS tunnel proxy are set here from Transport.
        self.session.trust_env = False
        self.session.verify = self.transport.ca_bundle or True
        self.session.proxies = self.transport.proxies(self.base_url)
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"northflank-build-action/{__version__}",
            }
        )

    def limits(self, deadline: float | None = None, retry: RetryPolicy | None = None) -> Limits:
        """Limits with the transport's retry policy unless another is given."""
        return Limits(deadline, retry or self.transport.retry)

    def api_time(self, wall: float) -> float | None:
        """Our Unix time `wall` on the API's clock, or None when no answer has told its clock."""
        return None if self.server_offset is None else wall + self.server_offset

    # -- endpoints ---------------------------------------------------------------------------

    def path(self, service: ServiceRef) -> str:
        return service_path(service.project_id, service.service_id, self.team_id)

    def get_service(self, service: ServiceRef, limits: Limits) -> Service:
        path = self.path(service)
        return self._parsed("GET", path, Service.parse, self._data("GET", path, limits))

    def start_build(self, service: ServiceRef, body: dict[str, Any], limits: Limits) -> Build:
        """One start request, never retried here: see start.py for what is safe."""
        path = self.path(service) + "/build"
        data = self._data("POST", path, replace(limits, retry=ONCE), body=body)
        return self._parsed("POST", path, Build.parse, data)

    def get_build(self, service: ServiceRef, build_id: str, limits: Limits) -> Build:
        path = f"{self.path(service)}/build/{quote(build_id)}"
        return self._parsed("GET", path, Build.parse, self._data("GET", path, limits))

    def list_builds(self, service: ServiceRef, limits: Limits, per_page: int = 20) -> list[Build]:
        """The service's builds on the first page; an entry that is not a build is left out."""
        return list(self.list_builds_page(service, limits, per_page).builds)

    def list_builds_page(
        self, service: ServiceRef, limits: Limits, per_page: int, cursor: str | None = None
    ) -> BuildPage:
        """One page of the service's builds: the first, or the one `cursor` names."""
        path = self.path(service) + "/build"
        params = {"per_page": str(per_page), **({"cursor": cursor} if cursor else {})}
        return BuildPage.parse(self._answer("GET", path, limits, params=params))

    def abort_build(self, service: ServiceRef, build_id: str, limits: Limits) -> None:
        path = f"{self.path(service)}/build/{quote(build_id)}"
        self._data("DELETE", path, replace(limits, retry=ONCE))

    def build_logs(self, service: ServiceRef, params: dict[str, str], limits: Limits) -> LogPage:
        """One answer of the log range query, in whichever known envelope it came."""
        path = self.path(service) + "/build-logs"
        answer = self._send("GET", path, replace(limits, retry=LOG_RETRY), params=params)
        return LogPage.parse(answer)

    # -- retries -----------------------------------------------------------------------------

    def retry_wait(
        self, error: ApiError, attempt: int, started: float, limits: Limits, least: float = 0.0
    ) -> float | None:
        """Seconds to wait before attempt + 1 of a call begun at `started`, or None to give up.

        The wait is at least `least`, honours Retry-After (or the rate-limit reset of a 429), and
        never ends past the policy's time budget or the deadline.
        """
        policy = limits.retry
        if error.refused and not self.answered:
            policy = replace(
                policy,
                attempts=min(policy.attempts, FIRST_CONTACT.attempts),
                budget=min(policy.budget, FIRST_CONTACT.budget),
            )
        if not error.retryable or attempt + 1 >= policy.attempts:
            return None
        wait = max(policy.backoff(attempt), error.retry_after or 0.0, least)
        end = started + policy.budget
        if limits.deadline is not None:
            end = min(end, limits.deadline)
        if self.clock() + wait >= end:
            return None
        return wait

    # -- transport ---------------------------------------------------------------------------

    @staticmethod
    def _parsed(method: str, path: str, parse: Callable[[Any], T], data: Any) -> T:
        try:
            return parse(data)
        except Malformed as error:
            hint = "Northflank answered in a form this program does not know"
            if method == "POST":
                hint += "; the build may have started: check the service's builds on Northflank"
            raise ApiError(f"{method} {path} answered: {error}", status=200, hint=hint) from None

    def _data(
        self,
        method: str,
        path: str,
        limits: Limits,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = self._answer(method, path, limits, body=body, params=params)["data"]
        return data

    def _answer(
        self,
        method: str,
        path: str,
        limits: Limits,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The decoded answer, whose data is an object (pagination beside it, for a list)."""
        answer = self._send(method, path, limits, body=body, params=params)
        if not isinstance(answer.get("data"), dict):
            raise ApiError(
                f"{method} {path} answered without a data object", status=200, retryable=True
            )
        return answer

    def _send(
        self,
        method: str,
        path: str,
        limits: Limits,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The decoded answer; retried on network errors, timeouts, 5xx and 429 as limits allow."""
        started = self.clock()
        attempt = 0
        while True:
            try:
                return self._once(method, path, body=body, params=params, limits=limits)
            except ApiError as error:
                wait = self.retry_wait(error, attempt, started, limits)
                if wait is None:
                    raise
                self.notify(
                    f"{_summary(method, path, error)}: trying again in {wait:.1f} s "
                    f"(attempt {attempt + 2} of at most {limits.retry.attempts})"
                )
            attempt += 1
            self.sleep(wait)

    def _timeout(self, limits: Limits) -> tuple[float, float]:
        read = limits.timeout if limits.timeout is not None else self.transport.read_timeout
        if limits.deadline is not None:
            read = max(min(1.0, read), min(read, limits.deadline - self.clock()))
        return (min(CONNECT_TIMEOUT, read), read)

    def _once(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        limits: Limits,
    ) -> dict[str, Any]:
        self.requests_made += 1
        timeouts = self._timeout(limits)
        began = self.clock()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=body,
                params=params,
                timeout=timeouts,
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as error:
            self.debug(f"{method} {path}: {_reason(error, timeouts)}")
            raise _unreachable(method, path, error, timeouts, self.base_url) from None
        self.answered = True
        self.rate.update(response.headers, self.clock(), self.wall())
        self._note_server_time(response.headers.get("Date"))
        self.debug(
            f"{method} {path}: HTTP {response.status_code} in {self.clock() - began:.2f} s, "
            f"{self.rate.remaining if self.rate.remaining is not None else '?'} requests left"
        )
        return self._decode(method, path, response)

    def _note_server_time(self, date: str | None) -> None:
        if not date:
            return
        with contextlib.suppress(TypeError, ValueError, IndexError):
            self.server_offset = parsedate_to_datetime(date).timestamp() - self.wall()

    def _decode(self, method: str, path: str, response: requests.Response) -> dict[str, Any]:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            where = urlsplit(location).netloc or "the same host"
            raise ApiError(
                f"{method} {path} was redirected to {where}; redirects are not followed, so "
                "the token is never sent elsewhere",
                status=status,
                hint="Check api-url: give the API's address itself",
            )
        try:
            payload = parse_json(response.content)
            problem = f"it is a JSON {type(payload).__name__}"
        except ValueError as error:
            payload, problem = None, str(error)
        # Northflank answers 200; any 2xx is taken as success, so that a 201 for a created
        # build is never mistaken for a failure and the build started again.
        if 200 <= status < 300 and isinstance(payload, dict):
            return payload
        if 200 <= status < 300:
            raise ApiError(
                f"{method} {path} answered with a body that is not a JSON object ({problem})",
                status=status,
                hint="A proxy may have cut the answer short",
                retryable=True,
            )
        raise _api_error(method, path, response, payload, self.wall())


def quote(build_id: str) -> str:
    """A build ID from the API as one path segment: it can never reach another route."""
    return quote_segment(build_id, safe="")


def _summary(method: str, path: str, error: ApiError) -> str:
    """The failure in one line that names the request, e.g. for a retry notice."""
    where = f" ({error.where})" if error.status is not None else ""
    if error.api_message.startswith(f"{method} {path}"):
        return error.api_message + where
    return f"{method} {path}{where}: {error.api_message}"


def _reason(error: requests.exceptions.RequestException, limits: tuple[float, float]) -> str:
    """What went wrong, in words, without quoting the exception (it may carry the URL)."""
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS failed (certificate not trusted or handshake refused)"
    if isinstance(error, AnswerTimeout):
        return f"the answer was not complete within {limits[1]:g} s"
    if isinstance(error, AnswerTooLarge):
        return f"the answer was larger than {MAX_ANSWER >> 20} MiB"
    if isinstance(error, requests.exceptions.ContentDecodingError):
        return f"the answer could not be decompressed ({error.args[0] if error.args else ''})"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return f"no connection within {limits[0]:g} s"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return f"no answer within {limits[1]:g} s"
    cause = _cause(error)
    if isinstance(cause, urllib3.exceptions.NameResolutionError):
        return "the host name could not be resolved"
    if isinstance(cause, urllib3.exceptions.NewConnectionError):
        return "the connection was refused"
    text = repr(error.args[0] if error.args else error).lower()
    if "reset" in text:
        return "the connection was reset"
    if "remotedisconnected" in text or "aborted" in text:
        return "the connection closed without an answer"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "the answer was cut short"
    return type(error).__name__


def _cause(error: requests.exceptions.RequestException) -> object:
    reason = error.args[0] if error.args else None
    return getattr(reason, "reason", reason)


def _never_sent(error: requests.exceptions.RequestException) -> bool:
    """True when the request provably never reached the server: no connection was made."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    return isinstance(_cause(error), urllib3.exceptions.NewConnectionError)


def _unreachable(
    method: str,
    path: str,
    error: requests.exceptions.RequestException,
    limits: tuple[float, float],
    base_url: str,
) -> ApiError:
    reason = _reason(error, limits)
    # NameResolutionError is a NewConnectionError: both say nothing is at that address.
    if isinstance(_cause(error), urllib3.exceptions.NewConnectionError):
        return ApiError(
            f"{method} {path}: {reason}",
            hint=f"Check api-url ({base_url}): nothing answers at that address and port",
            retryable=True,
            never_sent=True,
            refused=True,
        )
    if isinstance(error, requests.exceptions.SSLError):
        hint = (
            "Check api-url; behind a TLS-inspecting proxy give its CA certificates as "
            "REQUESTS_CA_BUNDLE (TLS verification is never turned off)"
        )
        if _plain_http_answer(error):
            hint = f"Check api-url ({base_url}): the server there does not speak TLS; a local "
            hint += "server without TLS is reached with http://"
        return ApiError(f"{method} {path}: {reason}", hint=hint, never_sent=True)
    invalid = (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader)
    return ApiError(
        f"{method} {path}: {reason}",
        hint="Check api-url and the network; the API could not be reached",
        retryable=not isinstance(error, invalid),
        never_sent=_never_sent(error),
        timed_out=isinstance(error, requests.exceptions.ReadTimeout),
    )


def _plain_http_answer(error: requests.exceptions.SSLError) -> bool:
    """True when the TLS handshake got a plain HTTP answer (https:// to an http:// server)."""
    text = repr(error.args[0] if error.args else error).upper()
    return "WRONG_VERSION_NUMBER" in text or "RECORD LAYER FAILURE" in text


def _api_error(
    method: str, path: str, response: requests.Response, payload: Any, wall: float
) -> ApiError:
    """The API's refusal with its own message, whole: it is shortened, if at all, where it is
    shown, after the secrets in it are masked (a cut could leave a piece no mask matches)."""
    status = response.status_code
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and error.get("message"):
        message = str(error["message"])
        details = error.get("details")
        if details:
            message += " " + json.dumps(details, separators=(",", ":"))
        error_id = str(error["id"]) if error.get("id") else None
    else:
        text = page_gist(body_text(response)) or response.reason or "no body"
        message = f"{method} {path}: {text}"
        error_id = None
    hint = HINTS.get(status, "The Northflank API failed; try again later" if status >= 500 else "")
    wait = retry_after_seconds(response.headers.get("Retry-After"), wall)
    if wait is None and status == 429 and response.headers.get("x-ratelimit-remaining") == "0":
        wait = reset_seconds(response.headers.get("x-ratelimit-reset"), wall)
    if status == 429 and wait is not None:
        hint += f" (in {wait:.0f} s)"
    return ApiError(
        message,
        status=status,
        error_id=error_id,
        hint=hint,
        retryable=status == 429 or status >= 500,
        retry_after=wait,
    )
