"""The API's answers, read within bounds: in time, in size and in depth.

However an answer misbehaves (a body sent a byte at a time, one that never ends, a gzip bomb,
JSON nested a hundred thousand levels deep, a megabyte of HTML), reading it ends within the
request's read timeout, holds at most MAX_ANSWER bytes before and after decompression, and ends
in an exception the client turns into one clear ApiError.

The time bound is one deadline for the whole answer, not one per read: a guard shuts the
connection's socket when the read timeout has passed since the request was sent, which ends
whatever read is waiting. The body is read by the transport adapter, so it is read wherever the
request is sent (on a worker thread, see interruptible.py), and the client gets it whole.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse

MAX_ANSWER = 8 << 20  # bytes of one answer, compressed and decompressed
MAX_DEPTH = 64  # levels of JSON nesting; the API's deepest answer has fewer than ten
CHUNK = 64 << 10
ACCEPT_ENCODING = "gzip, deflate"  # what _inflate() can undo, within MAX_ANSWER
# A \u escape of half a surrogate pair; json.loads() joins whole pairs and keeps lone halves.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
TITLE_START = re.compile(r"<title[^<>]*>", re.IGNORECASE)
TITLE_END = re.compile(r"</title\s*>", re.IGNORECASE)
TAG = re.compile(r"<[^<>]*>")  # never spans another "<": linear however many "<" a page holds


class AnswerTooLarge(requests.exceptions.RequestException):
    """The answer is larger than MAX_ANSWER bytes (compressed or not)."""


class AnswerTimeout(requests.exceptions.ReadTimeout):
    """The answer was not complete within the read timeout."""


class _Guard:
    """Shuts a socket when its answer is not complete in time, ending any read that waits on it."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.fired = False
        self._sock = sock
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(OSError):  # already closed: nothing waits on it
            self._sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _guarded(connection: HTTPConnection, get: Callable[[], HTTPResponse]) -> HTTPResponse:
    """The answer's head, read under a guard that stays on the connection for its body."""
    seconds = connection.timeout
    guard = None
    if isinstance(seconds, int | float) and connection.sock is not None:
        guard = _Guard(connection.sock, float(seconds))
    connection.guard = guard  # type: ignore[attr-defined]
    try:
        return get()
    except BaseException:
        if guard is not None:
            guard.cancel()
            if guard.fired:
                raise TimeoutError("the answer's head was not complete in time") from None
        raise


class _GuardedHTTPConnection(HTTPConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        return _guarded(self, super().getresponse)


class _GuardedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        return _guarded(self, super().getresponse)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}


class BoundedAdapter(HTTPAdapter):
    """Sends a request and reads its whole answer within the read timeout and MAX_ANSWER."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = POOLS
        return manager

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        request.headers["Accept-Encoding"] = ACCEPT_ENCODING

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        response = super().send(
            request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )
        guard = getattr(response.raw.connection, "guard", None)
        try:
            response._content = _read(response, guard)
        except BaseException:
            response.close()
            raise
        finally:
            if guard is not None:
                guard.cancel()
        return response


def _read(response: requests.Response, guard: _Guard | None) -> bytes:
    """The body, decompressed; AnswerTooLarge, AnswerTimeout or a RequestException otherwise."""
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > MAX_ANSWER:
        raise AnswerTooLarge(f"{declared} bytes announced", response=response)
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.raw.stream(CHUNK, decode_content=False):
            total += len(chunk)
            if total > MAX_ANSWER:
                raise AnswerTooLarge("more bytes than the bound", response=response)
            chunks.append(chunk)
    except requests.exceptions.RequestException:
        raise
    except (urllib3.exceptions.HTTPError, OSError) as error:
        if guard is not None and guard.fired:
            raise AnswerTimeout("the body was not complete in time", response=response) from None
        raise requests.exceptions.ChunkedEncodingError(error, response=response) from None
    if guard is not None and guard.fired:  # the guard ended a body that runs to the close
        raise AnswerTimeout("the body was not complete in time", response=response)
    return _decode_content(b"".join(chunks), response)


def _decode_content(body: bytes, response: requests.Response) -> bytes:
    encoding = response.headers.get("Content-Encoding", "")
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return body
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise requests.exceptions.ContentDecodingError(
            f"an encoding that was not asked for ({encoding})", response=response
        )
    try:
        return _inflate(body)
    except zlib.error:
        raise requests.exceptions.ContentDecodingError(
            "a compressed body that does not decompress", response=response
        ) from None


def _inflate(data: bytes) -> bytes:
    """gzip or zlib data decompressed, members one after another, at most MAX_ANSWER bytes."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # either header
        while data and not inflater.eof:
            out += inflater.decompress(data, MAX_ANSWER + 1 - len(out))
            if len(out) > MAX_ANSWER:
                raise AnswerTooLarge("more bytes than the bound once decompressed")
            data = inflater.unconsumed_tail
        if not inflater.eof:
            raise zlib.error("the compressed body is cut short")
        data = inflater.unused_data
    return bytes(out)


def parse_json(body: bytes) -> Any:
    """An answer's JSON value; ValueError saying what is wrong with it otherwise.

    Strict JSON (no NaN or Infinity), at most MAX_DEPTH levels deep; half a surrogate pair in a
    string becomes U+FFFD, so that every string can be printed and written.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise ValueError(f"it is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise ValueError("it is not JSON") from None
    return _checked(value, replace_surrogates=SURROGATE_ESCAPE.search(text) is not None)


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")


def _checked(value: Any, *, replace_surrogates: bool) -> Any:
    """The value, once its depth is known to be within MAX_DEPTH (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list) and depth > MAX_DEPTH:
            raise ValueError(f"it is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            if replace_surrogates:
                fixed = {_printable(k): _printable(v) for k, v in item.items()}
                item.clear()
                item.update(fixed)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            if replace_surrogates:
                item[:] = [_printable(child) for child in item]
            pending.extend((child, depth + 1) for child in item)
    return _printable(value) if replace_surrogates else value


def _printable(value: Any) -> Any:
    return LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def body_text(response: requests.Response) -> str:
    """The body as text, in the charset the answer names (UTF-8 when it names none it knows)."""
    charset = response.encoding or "utf-8"
    try:
        return response.content.decode(charset, errors="replace")
    except LookupError:
        return response.content.decode("utf-8", errors="replace")


def page_gist(text: str) -> str:
    """The gist of a page that is not the API's JSON (a proxy's HTML error page), on one line.

    Its title when it has one, else its text without tags; in time linear in its length.
    """
    start = TITLE_START.search(text)
    end = TITLE_END.search(text, start.end()) if start else None
    title = text[start.end() : end.start()] if start and end else ""
    if title.strip():
        text = title
    elif "<" in text:
        text = TAG.sub(" ", text)
    return " ".join(text.split())
