"""The HTTP side: a threading HTTP/1.1 server, fault playing, control routes and Emulator."""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import socket
import ssl
import struct
import sys
import threading
import traceback
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .answers import Answer, RequestError, error_answer, json_answer
from .api import Api, match_route
from .clock import Clock
from .config import EmulatorConfig, ExternalBuild, Outcome, load_config
from .faults import Fault, FaultError, FaultPlan, check_endpoint
from .logs import line_json
from .recording import Headers, RecordedRequest
from .state import World, newest_first

HTML_PAGE = (
    "<html><head><title>{code} {phrase}</title></head><body>"
    "<center><h1>{code} {phrase}</h1></center><hr><center>nginx</center></body></html>"
)


class Emulator:
    """A local Northflank API; start() serves it on a daemon thread until stop()."""

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        """Serve config (the default world without one) on clock (the machine's without one)."""
        self.config = config if config is not None else EmulatorConfig()
        self.clock = clock if clock is not None else Clock()
        self._lock = threading.Lock()
        self._world = World(self.config, self.clock)
        self._api = Api(self._world)
        self._faults = FaultPlan()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._scheme = "http"
        self._thread: threading.Thread | None = None
        for endpoint, faults in self.config.faults.items():
            self._faults.add(endpoint, faults)

    @classmethod
    def from_file(cls, path: str | Path) -> Emulator:
        """An emulator serving a YAML or JSON config file (see config.py for the format)."""
        return cls(load_config(path))

    def start(
        self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> str:
        """Bind (port 0: any free port), serve on a daemon thread and return the base URL.

        With a server-side TLS context it serves https:// (e.g. to test a client's CA bundle).
        """
        if self._server is not None:
            return self.url
        self._stopping.clear()
        self._server = _Server((host, port), _Handler, self)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # so that stop() returns promptly
            name="northflank-emulator",
            daemon=True,
        )
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:8080; RuntimeError before start()."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving, end pending delays and close open connections."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every /v1 (and unknown) request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def builds(self, project_id: str, service_id: str) -> list[dict[str, Any]]:
        """The service's build objects as the API would answer them now, newest first.

        Raises KeyError naming the project or service when there is no such service.
        """
        with self._lock:
            now = self.clock.now()
            try:
                builds = self._world.service_builds(project_id, service_id)
            except RequestError as error:
                raise KeyError(error.message) from None
            return [build.to_json(now) for build in builds]

    def log_lines(self, project_id: str, service_id: str, build_id: str) -> list[dict[str, str]]:
        """The build's whole log, including lines not yet emitted (cut at an abort).

        Raises KeyError naming what is missing when there is no such build.
        """
        with self._lock:
            try:
                build = self._world.find_build(project_id, service_id, build_id)
            except RequestError as error:
                raise KeyError(error.message) from None
            return [
                line_json(build.created_ms + line.offset_ms, line) for line in build.visible_lines()
            ]

    def add_build(
        self,
        project_id: str,
        service_id: str,
        *,
        sha: str | None = None,
        branch: str | None = None,
        pull_request_id: int | None = None,
        outcome: Outcome = "success",
        elapsed: float = 0.0,
        duration: float | None = None,
    ) -> dict[str, Any]:
        """Add a build the client did not start, as Northflank's "build latest" or a push would.

        It was created `elapsed` seconds ago and runs the service's phases (stretched to
        `duration` seconds when given), so an elapsed past its end adds a concluded build.
        Without a sha it builds the latest commit of its branch or pull request (a combined
        service: its linked branch), the sha a start request without one gets. Returns the build
        object as the API would answer it now. KeyError for an unknown service, ValueError for a
        deployment service or a bad value (a git service's sha must be 40 characters).
        """
        external = ExternalBuild(sha, branch, pull_request_id, outcome, elapsed, duration)
        with self._lock:
            try:
                build = self._world.add_external_build(project_id, service_id, external)
            except RequestError as error:
                if error.status == 404:
                    raise KeyError(error.message) from None
                raise ValueError(error.message) from None
            return build.to_json(self.clock.now())

    def add_faults(self, endpoint: str, faults: Sequence[Fault | str]) -> None:
        """Queue faults (dataclasses or compact strings) for an endpoint, played in order."""
        with self._lock:
            self._faults.add(endpoint, faults)

    def reset(self) -> None:
        """Forget builds not from the config, recorded requests, cursors, rate windows, faults."""
        with self._lock:
            self._world.reset()
            self._requests.clear()
            self._faults.clear()

    def _receive(self, request: RecordedRequest, endpoint: str | None) -> Fault | None:
        """Record the request and take the fault it meets, if any."""
        with self._lock:
            request.authorized = self._api.is_authorized(request)
            self._requests.append(request)
            return self._faults.take(endpoint)

    def _apply(self, request: RecordedRequest) -> Answer:
        with self._lock:
            return self._api.answer(request)

    def _rate_headers(self, request: RecordedRequest) -> dict[str, str]:
        with self._lock:
            return self._api.rate_headers(request)

    def _control(self, method: str, path: str, raw_body: bytes) -> Answer:
        """The /_emulator/ routes: no auth, not recorded, not rate limited."""
        with self._lock:
            now = self.clock.now()
            if (method, path) == ("GET", "/_emulator/requests"):
                return json_answer(200, {"requests": [r.as_json() for r in self._requests]})
            if (method, path) == ("GET", "/_emulator/builds"):
                every = [b for builds in self._world.builds.values() for b in builds]
                listed = [
                    {"projectId": b.project_id, "serviceId": b.service_id, **b.to_json(now)}
                    for b in sorted(every, key=newest_first)
                ]
                return json_answer(200, {"builds": listed})
            if (method, path) == ("GET", "/_emulator/faults"):
                return json_answer(200, {"faults": self._faults.pending()})
        if (method, path) == ("POST", "/_emulator/reset"):
            self.reset()
            return json_answer(200, {"reset": True})
        if (method, path) == ("POST", "/_emulator/faults"):
            return self._queue_faults(raw_body)
        if (method, path) == ("POST", "/_emulator/builds"):
            return self._add_external(raw_body)
        return error_answer(404, f"Route not found: {method} {path}")

    def _add_external(self, raw_body: bytes) -> Answer:
        """POST /_emulator/builds: add_build with the fields of a JSON object."""
        usage = (
            'expected {"projectId", "serviceId", "sha"?, "branch"?, "pullRequestId"?, '
            '"outcome"?, "elapsed"?, "duration"?}'
        )
        names = {"sha": "sha", "branch": "branch", "pullRequestId": "pull_request_id"}
        names.update(outcome="outcome", elapsed="elapsed", duration="duration")
        try:
            plan = json.loads(raw_body or b"null")
            required = {"projectId", "serviceId"}
            if (
                not isinstance(plan, dict)
                or set(plan) - {*required, *names}
                or required - set(plan)
            ):
                raise ValueError("unknown or missing fields")
            fields = {names[key]: value for key, value in plan.items() if key in names}
            build = self.add_build(str(plan["projectId"]), str(plan["serviceId"]), **fields)
        except KeyError as error:
            return error_answer(404, f"{error.args[0] if error.args else error}; {usage}")
        except (ValueError, TypeError) as error:  # ConfigError is a ValueError
            return error_answer(400, f"{error}; {usage}")
        return json_answer(200, {"build": build})

    def _queue_faults(self, raw_body: bytes) -> Answer:
        try:
            plan = json.loads(raw_body or b"null")
            endpoint, faults = check_endpoint(plan["endpoint"]), plan["faults"]
            if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
                raise FaultError("faults must be a list of fault strings")
            self.add_faults(endpoint, faults)
        except (ValueError, KeyError, TypeError) as error:
            usage = 'expected {"endpoint": "POST build", "faults": ["reset-after", "ok"]}'
            return error_answer(400, f"{error}; {usage}")
        with self._lock:
            return json_answer(200, {"faults": self._faults.pending()})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler], emulator: Emulator):
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._to_reset: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        """Remember open connections so that stop() can close them."""
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def reset_later(self, connection: socket.socket) -> None:
        """Close this connection with a TCP reset once its handler returns."""
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._connections_lock:
            self._to_reset.add(connection)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            resetting = request in self._to_reset
            self._to_reset.discard(request)
        if resetting:
            # No FIN first: closing with SO_LINGER 0 sends the client a reset.
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection so that idle keep-alive handlers end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # the client may have closed it already
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "NorthflankEmulator/0.1"
    timeout = 60
    disable_nagle_algorithm = True  # headers and body go out as two writes; no 40 ms stalls
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def version_string(self) -> str:
        return self.server_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, on the emulator's clock."""
        moment = self.server.emulator.clock.wall() if timestamp is None else timestamp
        return email.utils.formatdate(moment, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log is emu.requests and GET /_emulator/requests."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            self._serve_request()
        except ConnectionError:
            self.close_connection = True  # the client went away; nobody to answer
        except Exception as error:
            # A bug here must reach the client as a 500 naming it, not as a dropped connection.
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            self._send(error_answer(500, f"Emulator internal error: {error!r}"))

    def _serve_request(self) -> None:
        emulator = self.server.emulator
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        length = self.headers.get("Content-Length") or "0"
        if "chunked" in self.headers.get("Transfer-Encoding", "") or not length.isdigit():
            self.close_connection = True  # the body cannot be skipped safely
            self._send(error_answer(411, "Send the body with a valid Content-Length"))
            return
        raw_body = self.rfile.read(int(length))
        if path.startswith("/_emulator/"):
            self._send(emulator._control(self.command, path, raw_body))
            return
        request = RecordedRequest(
            method=self.command,
            path=path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=Headers(dict(self.headers.items())),
            raw_body=raw_body,
            at=emulator.clock.now(),
        )
        route = match_route(self.command, path)
        fault = emulator._receive(request, route.endpoint if route else None)
        self._play(fault or Fault("ok"), request)

    def _play(self, fault: Fault, request: RecordedRequest) -> None:
        emulator = self.server.emulator
        if fault.kind == "ok":
            self._send(emulator._apply(request))
        elif fault.kind == "status":
            if fault.apply:
                emulator._apply(request)
            message = f"{_phrase(fault.status)} (emulated fault)"
            self._send(error_answer(fault.status, message, None, emulator._rate_headers(request)))
        elif fault.kind == "rate-limit":
            headers = {**emulator._rate_headers(request), "x-ratelimit-remaining": "0"}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(math.ceil(fault.retry_after))
            self._send(error_answer(429, "Too many requests (emulated fault)", None, headers))
        elif fault.kind == "html":
            page = HTML_PAGE.format(code=fault.status, phrase=_phrase(fault.status)).encode()
            self._send(Answer(fault.status, page, {"Content-Type": "text/html"}))
        elif fault.kind in ("reset-before", "reset-after"):
            if fault.kind == "reset-after":
                emulator._apply(request)
            self._reset()
        elif fault.kind == "delay":
            answer = emulator._apply(request) if fault.apply else None
            if emulator._stopping.wait(fault.seconds):
                self._reset()
                return
            self._send(answer or emulator._apply(request))
        else:
            answer = emulator._apply(request)
            self._send(Answer(answer.status, answer.body[: len(answer.body) // 2], answer.headers))

    def _reset(self) -> None:
        self.close_connection = True
        self.server.reset_later(self.connection)

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)
