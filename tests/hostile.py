"""A hostile world, for tests: an API of the tests' own on 127.0.0.1 that misbehaves at the byte
level, scripted per request, and a harness that runs the program under hard limits of time and
memory and checks what it promises whatever happened.

The server answers like Northflank unless a test scripts otherwise: `api.script("GET build",
trickle(...))` makes the next read of the build a body sent one byte at a time. Every reply writes
raw bytes to the socket, so it can lie about lengths, never finish, reset the connection or send
what no HTTP library would.

The harness runs entrypoint.py as a subprocess with the GitHub runner's environment
(tests/runner.py), an address-space limit of its own (RLIMIT_AS) and a wall-time limit after which
it is killed, so that a regression fails in seconds instead of hanging or exhausting the machine.
`check()` then asserts the promise: the exit code, no traceback, the end within `timeout` plus a
grace, no secret in any stream or file in any form, and the abort sent when one is due.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.conftest import PROJECT, TOKEN
from tests.runner import EVENTS, REPO, parse_output_file

PUSH = json.loads((EVENTS / "push.json").read_text(encoding="utf-8"))
SHA = PUSH["after"]
BRANCH = PUSH["ref"].removeprefix("refs/heads/")
BUILD_ID = "hostile-build-1"
MEMORY_LIMIT = 1 << 30  # bytes of address space: a run needs about a quarter of it
GRACE = 5.0  # seconds a run may take beyond its `timeout`: start-up, a last read, the abort
HARD_EXTRA = 10.0  # seconds beyond that after which the run is killed as hung

Reply = Callable[[socket.socket], None]


@dataclass(frozen=True)
class FromRequest:
    """A reply made from the request it answers (to echo it, as some APIs do)."""

    make: Callable[[Received], Reply]


# -- what the server received ------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request as the server read it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it was read

    @property
    def endpoint(self) -> str:
        """The API call in words: "POST build", "GET build", "GET builds", "DELETE build", ..."""
        tail = self.path.split("/services/", 1)[1] if "/services/" in self.path else ""
        parts = tail.split("/")[1:]
        if parts == ["build"]:
            return f"{self.method} builds" if self.method == "GET" else f"{self.method} build"
        if parts[:1] == ["build"]:
            return f"{self.method} build"
        if parts == ["build-logs"]:
            return f"{self.method} logs"
        if not parts and tail:
            return f"{self.method} service"
        return f"{self.method} {self.path}"


# -- replies: raw bytes on the socket ------------------------------------------------------------


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} Hostile", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def answer(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Reply:
    """A complete, honest answer."""
    fields = {"Content-Type": "application/json", **(headers or {})}
    fields.update({"Content-Length": str(len(body)), "Connection": "close"})

    def send(conn: socket.socket) -> None:
        conn.sendall(_head(status, fields) + body)

    return send


def json_reply(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return answer(status, json.dumps(payload).encode(), headers)


def html(status: int, page: str) -> Reply:
    return answer(status, page.encode(), {"Content-Type": "text/html"})


def trickle(body: bytes, every: float = 2.0, status: int = 200) -> Reply:
    """Honest headers, then the body one byte every `every` seconds."""

    def send(conn: socket.socket) -> None:
        head = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        conn.sendall(_head(status, {**head, "Connection": "close"}))
        for index in range(len(body)):
            conn.sendall(body[index : index + 1])
            time.sleep(every)

    return send


def trickle_head(every: float = 2.0) -> Reply:
    """The status line, then header bytes one every `every` seconds, never ending."""

    def send(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while True:
            conn.sendall(b"X")
            time.sleep(every)

    return send


def endless_chunked(piece: bytes = b" " * 4096) -> Reply:
    """A chunked body that never ends (white space, valid inside JSON)."""

    def send(conn: socket.socket) -> None:
        head = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        conn.sendall(_head(200, head))
        conn.sendall(b"1\r\n{\r\n")
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        while True:
            conn.sendall(chunk)

    return send


def huge(size: int, *, declared: bool = True, fill: bytes = b" ") -> Reply:
    """A body of `size` bytes, with its Content-Length or until the connection closes."""

    def send(conn: socket.socket) -> None:
        head: dict[str, str] = {"Content-Type": "application/json", "Connection": "close"}
        if declared:
            head["Content-Length"] = str(size)
        conn.sendall(_head(200, head))
        block = fill * (65536 // len(fill))
        sent = 0
        while sent < size:
            piece = block[: size - sent]
            conn.sendall(piece)
            sent += len(piece)

    return send


def gzip_bomb(decompressed: int) -> Reply:
    """A gzip body of `decompressed` zero bytes; the wire carries about a thousandth of it."""
    block = 1 << 20
    squeezer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = squeezer.compress(b"\0" * block) + squeezer.flush(zlib.Z_FULL_FLUSH)
    # After a full flush the compressor starts afresh, so every further megabyte of zeros
    # compresses to the same bytes: the bomb is built without compressing it all.
    repeat = squeezer.compress(b"\0" * block) + squeezer.flush(zlib.Z_FULL_FLUSH)
    end = squeezer.flush()
    count = max(0, decompressed // block - 1)

    def send(conn: socket.socket) -> None:
        length = len(first) + count * len(repeat) + len(end)
        head = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        conn.sendall(_head(200, {**head, "Content-Length": str(length), "Connection": "close"}))
        conn.sendall(first)
        for _ in range(count):
            conn.sendall(repeat)
        conn.sendall(end)

    return send


def truncated(payload: Any, status: int = 200) -> Reply:
    """An answer that announces more bytes than it sends, then closes."""
    body = json.dumps(payload).encode()

    def send(conn: socket.socket) -> None:
        head = {"Content-Type": "application/json", "Content-Length": str(len(body) * 2)}
        conn.sendall(_head(status, {**head, "Connection": "close"}) + body)

    return send


def echo(status: int = 400) -> FromRequest:
    """A refusal whose message and details quote the request body, as a validating API does."""

    def make(request: Received) -> Reply:
        text = request.body.decode("utf-8", "replace")
        error = {"status": status, "message": f"invalid body: {text}", "id": "echo-1"}
        with contextlib.suppress(ValueError):
            error["details"] = {"body": json.loads(text)}
        return json_reply({"error": error}, status=status)

    return FromRequest(make)


def reset() -> Reply:
    """The connection reset (RST) without a byte of answer."""

    def send(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return send


def silence(seconds: float) -> Reply:
    """No answer for `seconds`, then the connection closed."""

    def send(conn: socket.socket) -> None:
        time.sleep(seconds)

    return send


def later(seconds: float, reply: Reply) -> Reply:
    """`reply` after `seconds` of silence."""

    def send(conn: socket.socket) -> None:
        time.sleep(seconds)
        reply(conn)

    return send


# -- the API ------------------------------------------------------------------------------------


def build(**changes: Any) -> dict[str, Any]:
    """A build object as the API describes one, with changes."""
    value: dict[str, Any] = {
        "id": BUILD_ID,
        "status": "QUEUED",
        "concluded": False,
        "success": None,
        "sha": SHA,
        "branch": BRANCH,
        "createdAt": "2030-01-01T00:00:00.000Z",
        "message": "",
    }
    value.update(changes)
    return value


FINISHED = {"status": "SUCCESS", "concluded": True, "success": True, "message": "Built"}


class HostileApi:
    """A Northflank API on 127.0.0.1 that answers like the real one unless a test scripts otherwise.

    A build is started by POST, read as running `polls` times, then as `final`. Scripted replies
    are used in turn for their endpoint, after which the honest ones resume.
    """

    def __init__(self, *, polls: int = 1, final: Mapping[str, Any] | None = None) -> None:
        self.requests: list[Received] = []
        self.final = dict(FINISHED if final is None else final)
        self._polls = polls
        self._scripts: dict[str, deque[Reply | FromRequest]] = defaultdict(deque)
        self._seen = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def script(self, endpoint: str, *replies: Reply | FromRequest) -> None:
        """The next requests to endpoint ("GET build", "POST build", ...) get these replies."""
        self._scripts[endpoint].extend(replies)

    def received(self, endpoint: str) -> list[Received]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def wait_for(self, endpoint: str, count: int = 1, timeout: float = 20.0) -> bool:
        """Wait until `count` requests to endpoint have arrived; False when they did not."""
        with self._seen:
            return self._seen.wait_for(lambda: len(self.received(endpoint)) >= count, timeout)

    def close(self) -> None:
        self._listener.close()

    def honest(self, request: Received) -> Reply:
        endpoint = request.endpoint
        if endpoint == "POST build":
            return json_reply({"data": build()})
        if endpoint == "GET build":
            if self._polls > 0:
                self._polls -= 1
                return json_reply({"data": build(status="BUILDING")})
            return json_reply({"data": build(**self.final)})
        if endpoint == "DELETE build":
            return json_reply({"data": {"id": BUILD_ID, "status": "ABORTED"}})
        if endpoint == "GET builds":
            return json_reply({"data": {"builds": []}})
        if endpoint == "GET logs":
            lines = [{"ts": "2030-01-01T00:00:01.000Z", "log": "step 1/1: error: it failed"}]
            return json_reply({"data": lines})
        if endpoint == "GET service":
            return json_reply({"data": {"id": "api", "serviceType": "build", "buildSource": "git"}})
        message = {"error": {"status": 404, "message": "no such route", "id": "e404"}}
        return json_reply(message, status=404)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            request = _read_request(conn)
            if request is None:
                return
            with self._seen:
                self.requests.append(request)
                queue = self._scripts[request.endpoint]
                reply = queue.popleft() if queue else self.honest(request)
                self._seen.notify_all()
            if isinstance(reply, FromRequest):
                reply = reply.make(request)
            reply(conn)


def _read_request(conn: socket.socket) -> Received | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > 1 << 20:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    method, target, _ = line.split(" ", 2)
    headers = {}
    for item in fields:
        name, _, value = item.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    path, _, query = target.partition("?")
    return Received(method, path, query, headers, body, time.monotonic())


@contextlib.contextmanager
def hostile_api(**options: Any) -> Iterator[HostileApi]:
    api = HostileApi(**options)
    try:
        yield api
    finally:
        api.close()


# -- running the program ------------------------------------------------------------------------


def inputs(url: str, **changes: str) -> dict[str, str]:
    """The inputs of a quick run against url: a build service, a fixed poll, no logs."""
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "service-type": "build",
        "api-url": url,
        "poll-interval": "0.2",
        "timeout": "8",
        "logs": "off",
        "outputs-file": "outputs.json",
    }
    values.update({k.replace("_", "-"): v for k, v in changes.items()})
    return values


@dataclass
class Run:
    """What one run of the program left behind, and how long it took."""

    code: int | None  # None when it was killed for outliving its limit
    stdout: str
    stderr: str
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)
    outputs_text: str = ""
    summary: str = ""
    files: dict[str, str] = field(default_factory=dict)
    signalled_at: float = 0.0  # time.monotonic() when a test signalled it

    @property
    def text(self) -> str:
        return self.stdout + self.stderr

    @property
    def killed(self) -> bool:
        return self.code is None

    def file_json(self, name: str = "outputs.json") -> Any:
        return json.loads(self.files[name])


def start(
    env: Mapping[str, str],
    *args: str,
    cwd: Path,
    memory: int = MEMORY_LIMIT,
    stdout: int = subprocess.PIPE,
    stderr: int = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start the program under an address-space limit of its own, its waits cut short
    (tests/quick_entry.py)."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "quick_entry.py"), *args],
        env=dict(env),
        cwd=str(cwd),
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
    )
    # Set from outside (preexec_fn is unsafe with the server's threads); the program is still
    # importing when it applies, long before any answer is read.
    resource.prlimit(process.pid, resource.RLIMIT_AS, (memory, memory))
    return process


def finish(
    process: subprocess.Popen[bytes],
    env: Mapping[str, str],
    *,
    cwd: Path,
    limit: float,
    started: float,
    files: Iterable[str] = ("outputs.json",),
) -> Run:
    """Wait for the program at most `limit` seconds from `started`, killing it after that."""
    try:
        out, err = process.communicate(timeout=max(0.1, started + limit - time.monotonic()))
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        code = None
    seconds = time.monotonic() - started
    run = Run(code, _text(out), _text(err), seconds)
    output = env.get("GITHUB_OUTPUT")
    if output and Path(output).is_file():
        run.outputs_text = Path(output).read_bytes().decode("utf-8", "replace")
        with contextlib.suppress(ValueError):
            run.outputs = parse_output_file(run.outputs_text)
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary and Path(summary).is_file():
        run.summary = Path(summary).read_bytes().decode("utf-8", "replace")
    for name in files:
        path = cwd / name
        if path.is_file():
            run.files[name] = path.read_bytes().decode("utf-8", "replace")
    return run


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")


def run_program(
    env: Mapping[str, str],
    *args: str,
    cwd: Path,
    timeout: float,
    memory: int = MEMORY_LIMIT,
    files: Iterable[str] = ("outputs.json",),
) -> Run:
    """Run the program to its end, or kill it HARD_EXTRA seconds after its promised end."""
    started = time.monotonic()
    process = start(env, *args, cwd=cwd, memory=memory)
    limit = timeout + GRACE + HARD_EXTRA
    return finish(process, env, cwd=cwd, limit=limit, started=started, files=files)


def signal_when(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], signum: int, *, wait: float = 20.0
) -> float | None:
    """Send signum once ready() holds: the time.monotonic() it was sent, None when never."""
    end = time.monotonic() + wait
    while time.monotonic() < end and process.poll() is None:
        if ready():
            process.send_signal(signum)
            return time.monotonic()
        time.sleep(0.02)
    return None


# -- the promise --------------------------------------------------------------------------------


def secret_forms(secret: str | bytes) -> set[str]:
    """Every form in which a secret could be printed: as is, escaped, encoded, and as any piece
    of its base64 long enough to decode to a piece of it (a cut-off echo of a request body)."""
    data = secret if isinstance(secret, bytes) else secret.encode("utf-8")
    text = data.decode("utf-8", "replace")
    forms: set[str] = set()
    values = [text.strip(), *(line.strip() for line in text.splitlines())]
    for value in (v for v in values if len(v) >= 8):
        forms |= {
            value,
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            quote(value, safe=""),
            base64.b64encode(value.encode()).decode(),
        }
    encoded = base64.b64encode(data).decode()
    # 16 characters of base64 at a multiple of 4 decode to 12 bytes of the secret.
    forms |= {encoded[i : i + 16] for i in range(0, max(1, len(encoded) - 15), 4)}
    return {form for form in forms if len(form) >= 8}


def leaks(run: Run, secrets: Iterable[str | bytes]) -> list[tuple[str, str]]:
    """(where, form) for every form of a secret found in a stream or file the run left."""
    texts = {
        "stdout": _shown(run.stdout),
        "stderr": _shown(run.stderr),
        "GITHUB_OUTPUT": run.outputs_text,
        "summary": run.summary,
        **run.files,
    }
    forms = set().union(*(secret_forms(s) for s in secrets)) if secrets else set()
    return [(where, form) for where, text in texts.items() for form in forms if form in text]


def _shown(text: str) -> str:
    """What the CI shows: the runner consumes its mask commands."""
    masks = ("::add-mask::", "##vso[task.setsecret]")
    return "\n".join(line for line in text.splitlines() if not line.startswith(masks))


TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\w+(?:Error|Exception): ", re.M)


def check(
    run: Run,
    *,
    code: int,
    timeout: float,
    secrets: Sequence[str | bytes] = (TOKEN,),
    api: HostileApi | None = None,
    aborted: bool | None = None,
) -> None:
    """Assert the observable promise of one run."""
    assert not run.killed, f"the run outlived {timeout:g}s + grace and was killed:\n{run.text}"
    assert run.code == code, f"exit code {run.code}, not {code}:\n{run.text[-3000:]}"
    assert TRACEBACK.search(run.text) is None, f"a traceback:\n{run.text[-3000:]}"
    assert run.seconds <= timeout + GRACE, f"took {run.seconds:.1f}s for a timeout of {timeout}s"
    found = leaks(run, secrets)
    assert not found, f"secrets shown: {found[:5]}"
    if aborted is not None:
        assert api is not None
        sent = bool(api.received("DELETE build"))
        assert sent == aborted, f"abort {'not ' if aborted else ''}expected: {api.requests}"


ESCAPES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
OWN_COMMANDS = {"add-mask", "debug", "error", "warning", "group", "endgroup"}


def clean_terminal(run: Run) -> None:
    """Assert that nothing printed holds a control character, an escape sequence or a workflow
    command the program did not mean to write."""
    for name, text in (("stdout", run.stdout), ("stderr", run.stderr)):
        found = ESCAPES.search(text)
        assert found is None, f"{name} holds {found.group()!r}: {text[:2000]!r}"
    lines = (line.lstrip() for line in re.split(r"\r\n|\r|\n", run.stdout))
    used = {line[2:].split("::")[0].split(" ")[0] for line in lines if line.startswith("::")}
    assert used <= OWN_COMMANDS, used
    assert re.search(r"##(vso)?\[", run.stdout, re.IGNORECASE) is None


def interrupt(
    env: Mapping[str, str],
    *args: str,
    cwd: Path,
    ready: Callable[[], bool],
    timeout: float,
    signum: int = signal.SIGINT,
) -> tuple[Run, float | None]:
    """Run the program and send signum once ready() holds; the run and when it was sent."""
    started = time.monotonic()
    process = start(env, *args, cwd=cwd)
    sent = signal_when(process, ready, signum, wait=timeout + GRACE)
    limit = timeout + GRACE + HARD_EXTRA
    return finish(process, env, cwd=cwd, limit=limit, started=started), sent
