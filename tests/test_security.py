"""Strict security defaults, end to end: the token stays with the api-url host, TLS is verified
(with REQUESTS_CA_BUNDLE honoured), text from the API cannot inject workflow commands or outputs,
and secrets never show, not even in debug mode. tests/audit.py searches every run for secrets."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from northflank_build import report
from northflank_build.console import GitHubConsole, neutralize
from northflank_build.emulator import Emulator, EmulatorConfig
from northflank_build.inputs import load_action, output_specs
from tests.audit import leaks, secrets
from tests.clock import CLOCK
from tests.conftest import PROJECT, TOKEN, MakeEmulator, api_requests, fast_world, write
from tests.runner import EVENTS, Result, github_env, parse_output_file, run
from tests.scripted import Answer, json_answer

PUSH = json.loads((EVENTS / "push.json").read_text(encoding="utf-8"))
GITHUB = {"GITHUB_SHA": PUSH["after"], "GITHUB_REF": PUSH["ref"]}
FILE_SECRET = "//npm.example/:_authToken=file-secret-998877\nsecond-line-secret-5566\n"
INLINE_SECRET = "inline-secret-445566"
MOUNT_SECRET = "mount-secret-112233"
# Commands the program itself writes; anything else on stdout would be an injection.
OWN_COMMANDS = {"add-mask", "debug", "error", "warning", "group", "endgroup"}


def action(tmp_path: Path, url: str, extra: dict[str, str] | None = None, **inputs: str) -> Result:
    values = {
        "api-token": TOKEN,
        "project-id": PROJECT,
        "service-id": "api",
        "service-type": "build",
        "api-url": url,
        "poll-interval": "0.1",
        "timeout": "30",
        "logs": "off",
        **{k.replace("_", "-"): v for k, v in inputs.items()},
    }
    env = github_env(tmp_path, values, extra={**GITHUB, **(extra or {})})
    return run(env, tmp=tmp_path)


def commands(stdout: str) -> list[str]:
    """The workflow commands the runner would read: lines split as .NET's ReadLine splits them."""
    lines = (line.lstrip() for line in re.split(r"\r\n|\r|\n", stdout))
    return [line[2:].split("::")[0].split(" ")[0] for line in lines if line.startswith("::")]


# -- the token goes to the api-url host only -------------------------------------------------------


def test_a_redirect_to_another_host_is_an_error_and_the_token_stays_home(
    tmp_path: Path, make_emulator: MakeEmulator, scripted: Any
) -> None:
    emulator = make_emulator()
    elsewhere = emulator.url.removeprefix("http://")
    redirector = scripted(lambda m, p, b: (307, {"Location": f"{emulator.url}{p}"}, b""))
    result = action(tmp_path, redirector.url)
    assert result.code == 3, result.text
    assert api_requests(emulator) == []
    assert len(redirector.requests) == 1
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert f"redirected to {elsewhere}" in error
    assert "HTTP 307" in error
    assert "Check api-url" in error


# -- TLS is always verified --------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_emulator(certificate: tuple[Path, Path]) -> Iterator[Emulator]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    emulator = Emulator(
        EmulatorConfig(token=TOKEN, projects=fast_world()), clock=CLOCK.emulator_clock()
    )
    emulator.start(tls=context)
    yield emulator
    emulator.stop()


def test_tls_is_verified_and_requests_ca_bundle_is_honoured(
    tmp_path: Path, tls_emulator: Emulator, certificate: tuple[Path, Path]
) -> None:
    assert tls_emulator.url.startswith("https://127.0.0.1:")
    (tmp_path / "untrusted").mkdir()
    (tmp_path / "trusted").mkdir()
    untrusted = action(tmp_path / "untrusted", tls_emulator.url)
    assert untrusted.code == 3, untrusted.text
    assert api_requests(tls_emulator) == []
    [error] = [line for line in untrusted.stdout.splitlines() if line.startswith("::error")]
    assert "TLS failed" in error
    assert "REQUESTS_CA_BUNDLE" in error
    assert untrusted.outputs["api-requests"] == "1", "a TLS failure is not retried"

    trusted = action(
        tmp_path / "trusted", tls_emulator.url, {"REQUESTS_CA_BUNDLE": str(certificate[0])}
    )
    assert trusted.code == 0, trusted.text
    assert trusted.outputs["result"] == "success"
    assert [r.method for r in api_requests(tls_emulator)][:1] == ["POST"]


def test_a_missing_ca_bundle_is_a_configuration_error(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(tmp_path, emulator.url, {"REQUESTS_CA_BUNDLE": str(tmp_path / "nope.pem")})
    assert result.code == 2, result.text
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert "REQUESTS_CA_BUNDLE: CA bundle" in error
    assert api_requests(emulator) == []


# -- text from the API is data, never a command ------------------------------------------------

HOSTILE = (
    "Built ##[set-output name=image;]evil\n::set-env name=NODE_OPTIONS::--require /tmp/x"
    "\r::warning::spoofed %0A::error::encoded\n  ::add-mask::x\n##vso[task.setvariable variable=a]b"
    "\nimage<<EOF\nghadelimiter_x\n::stop-commands::pause"
)


def hostile_api(method: str, path: str, body: bytes) -> Answer:
    """An API whose every text field tries to speak to the runner."""
    build = {
        "id": "evil-1",
        "sha": PUSH["after"],
        "branch": "main\n::error::branch",
        "createdAt": "2030-01-01T00:00:00.000Z",
        "registry": {"uri": "registry.example/app\n::set-output name=x::y"},
    }
    if method == "POST":
        return json_answer(200, {"data": {**build, "status": "QUEUED\n::error::status"}})
    return json_answer(
        200,
        {"data": {**build, "status": "SUCCESS", "concluded": True, "success": True,
                  "message": HOSTILE}},
    )  # fmt: skip


def test_api_text_cannot_inject_workflow_commands_or_outputs(tmp_path: Path, scripted: Any) -> None:
    api = scripted(hostile_api)
    result = action(tmp_path, api.url, outputs_file="outputs.env")
    assert result.code == 0, result.text
    assert set(commands(result.stdout)) <= OWN_COMMANDS - {"error", "warning"}, result.stdout
    assert re.search(r"##(vso)?\[", result.stdout, re.IGNORECASE) is None
    assert set(result.outputs) == {spec.name for spec in output_specs(load_action())}
    assert result.outputs["message"] == HOSTILE
    assert result.outputs["image"] == "registry.example/app\n::set-output name=x::y"
    assert result.json_output("build")["message"] == HOSTILE
    lines = (tmp_path / "outputs.env").read_bytes().decode().split("\n")[:-1]
    assert len(lines) == len(output_specs(load_action()))
    assert all(line.startswith("NORTHFLANK_") for line in lines)
    assert all(not line.lstrip().startswith("::") for line in result.summary.splitlines())
    assert [path for _, path, _ in api.requests][
        1
    ] == "/v1/projects/demo-project/services/api/build/evil-1"


def test_an_api_error_that_echoes_the_request_shows_no_secret_and_one_error_line(
    tmp_path: Path, scripted: Any
) -> None:
    def echo(method: str, path: str, body: bytes) -> Answer:
        message = f"invalid body {body.decode()}\n::error::second line {INLINE_SECRET}"
        return json_answer(400, {"error": {"status": 400, "message": message, "id": "e1"}})

    api = scripted(echo)
    result = action(tmp_path, api.url, build_files=f"/app/inline.txt: {INLINE_SECRET}")
    assert result.code == 3, result.text
    assert base64.b64encode(INLINE_SECRET.encode()) in api.requests[0][2]
    assert commands(result.stdout).count("error") == 1
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert "%0A::error::second line ***" in error
    assert "HTTP 400" in error


# -- secrets stay hidden, even in debug mode ------------------------------------------------------


def test_debug_mode_never_shows_build_files_or_secret_mounts(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    emulator.add_faults("POST build", ["reset-after"])
    emulator.add_faults("GET build", ["status:503", "html:502"])
    write(tmp_path / "secrets" / "npmrc", FILE_SECRET)
    result = action(
        tmp_path,
        emulator.url,
        {"RUNNER_DEBUG": "1"},
        build_files=f"/app/.npmrc: {{file: secrets/npmrc}}\n/app/inline.txt: {INLINE_SECRET}",
        docker_secret_mounts=f"gh-token: {MOUNT_SECRET}",
        outputs_file="outputs.json",
    )
    assert result.code == 0, result.text
    assert "::debug::" in result.stdout
    [start, *_] = [r for r in api_requests(emulator) if r.method == "POST"]
    sent = start.body["overrides"]
    assert base64.b64decode(sent["buildFiles"]["/app/.npmrc"]["data"]).decode() == FILE_SECRET
    assert base64.b64decode(sent["dockerSecretMounts"]["gh-token"]["data"]) == MOUNT_SECRET.encode()
    written = json.loads((tmp_path / "outputs.json").read_text(encoding="utf-8"))
    assert written["request"]["body"]["overrides"]["buildFiles"]["/app/.npmrc"]["data"] == "***"
    # The audit searched everything above for each line of the file, and for its base64.
    given = {"GITHUB_WORKSPACE": str(tmp_path), "INPUT_BUILD-FILES": "/a: {file: secrets/npmrc}"}
    searched = secrets(given, (), tmp_path)
    assert "second-line-secret-5566" in searched
    assert base64.b64encode(FILE_SECRET.encode()).decode() in searched


def test_a_dry_run_in_debug_mode_shows_the_request_without_secrets(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator()
    result = action(
        tmp_path,
        emulator.url,
        {"RUNNER_DEBUG": "1"},
        dry_run="true",
        build_files=f"/app/inline.txt: {INLINE_SECRET}",
        docker_secret_mounts=f'{{"gh-token": "{MOUNT_SECRET}\\u00e9"}}',
    )
    assert result.code == 0, result.text
    assert '"data": "***"' in result.stdout
    assert api_requests(emulator) == []


# -- the pieces ------------------------------------------------------------------------------


def test_the_audit_finds_a_secret_in_any_form(tmp_path: Path) -> None:
    env = {"INPUT_API-TOKEN": TOKEN, "INPUT_BUILD-FILES": f"/a: {INLINE_SECRET}"}
    for leak in (TOKEN, INLINE_SECRET, base64.b64encode(INLINE_SECRET.encode()).decode()):
        assert leaks({"summary": f"x {leak} y"}, env, (), tmp_path) == [("summary", leak)]
    quoted = {"INPUT_BUILD-FILES": "/a: 'quo\"ted-secret-1'"}
    escaped = json.dumps({"file": 'quo"ted-secret-1'})
    assert leaks({"outputs-file": escaped}, quoted, (), tmp_path) != []
    assert leaks({"summary": "nothing to see"}, env, (), tmp_path) == []


def test_the_outputs_writer_never_uses_a_delimiter_the_value_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = iter(["same", "same", "other"])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(ids))
    value = "before\nghadelimiter_same\nimage=evil"
    block = report.github_output_block("message", value)
    assert block.startswith("message<<ghadelimiter_other\n")
    assert parse_output_file(block) == {"message": value}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("::error::x", "| ::error::x"),
        ("  ::set-env name=A::b", "|   ::set-env name=A::b"),
        ("done ##[set-output name=a;]b", "done ## [set-output name=a;]b"),
        ("x ##VSO[task.setvariable variable=a]b", "x ## VSO[task.setvariable variable=a]b"),
        ("## a heading", "| ## a heading"),
        ("plain", "plain"),
    ],
)
def test_neutralize_breaks_every_command_form(text: str, shown: str) -> None:
    assert neutralize(text) == shown


def test_lone_surrogates_from_the_api_are_printed_and_written(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with out.open("w", encoding="utf-8") as stream:
        GitHubConsole(out=stream).info("status \ud800 unknown")
    assert out.read_text(encoding="utf-8") == "status \ufffd unknown\n"
    report.write_github_output(tmp_path / "gh", {"message": "a \udc80 b"})
    assert parse_output_file((tmp_path / "gh").read_text(encoding="utf-8")) == {"message": "a ? b"}


class TunnelProxy:
    """An HTTP proxy on 127.0.0.1 that only tunnels (CONNECT), recording what it was asked."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        self.requests.append(head)
        method, target = head.split(b" ")[:2]
        if method != b"CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        host, port = target.decode().rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


def test_an_https_proxy_tunnels_and_never_sees_the_token(
    tmp_path: Path, tls_emulator: Emulator, certificate: tuple[Path, Path]
) -> None:
    proxy = TunnelProxy()
    try:
        bundle = {"REQUESTS_CA_BUNDLE": str(certificate[0]), "HTTPS_PROXY": proxy.url}
        (tmp_path / "proxied").mkdir()
        result = action(tmp_path / "proxied", tls_emulator.url, bundle)
        assert result.code == 0, result.text
        host = tls_emulator.url.removeprefix("https://").encode()
        assert proxy.requests, "the proxy was not used"
        assert all(r.startswith(b"CONNECT " + host + b" ") for r in proxy.requests)
        assert not any(TOKEN.encode() in r for r in proxy.requests)

        seen = len(proxy.requests)
        (tmp_path / "bypassed").mkdir()
        bypassed = action(
            tmp_path / "bypassed", tls_emulator.url, {**bundle, "NO_PROXY": "127.0.0.1"}
        )
        assert bypassed.code == 0, bypassed.text
        assert len(proxy.requests) == seen, "NO_PROXY was not honoured"
    finally:
        proxy.close()


def test_plain_http_never_goes_through_a_proxy(tmp_path: Path, emulator: Emulator) -> None:
    proxy = TunnelProxy()
    try:
        result = action(tmp_path, emulator.url, {"HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url})
        assert result.code == 0, result.text
        assert proxy.requests == []
    finally:
        proxy.close()
