"""The parts that stand between a hostile world and the user, in process and over generated input:
the client against any answer of a server of the tests' own, the masking rule, and the console's
cleaning of what it prints."""

from __future__ import annotations

import gzip
import io
import json
import string
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from northflank_build.client import Api, RetryPolicy, ServiceRef, Transport
from northflank_build.console import LINE_LIMIT, Console, GitHubConsole, sanitize, shorten
from northflank_build.errors import ApiError
from northflank_build.masking import FEW, Masker
from northflank_build.model import Build
from northflank_build.settings import parse_build_arguments
from tests.conftest import PROJECT, TOKEN
from tests.hostile import HostileApi, answer, hostile_api

settings.register_profile("hostile", max_examples=60, deadline=None)


@pytest.fixture(scope="module")
def server() -> Iterator[HostileApi]:
    with hostile_api() as api:
        yield api


def client(url: str) -> Api:
    transport = Transport(read_timeout=2.0, retry=RetryPolicy(attempts=1))
    return Api(url, TOKEN, transport=transport)


# -- any answer is a build or one ApiError --------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps({"data": v}).encode()),
    json_values.map(lambda v: json.dumps({"error": v}).encode()),
    st.integers(1, 3000).map(lambda depth: b'{"data": ' + b"[" * depth + b"]" * depth + b"}"),
)
statuses = st.sampled_from([200, 201, 204, 302, 400, 401, 404, 429, 500, 502, 503])


@settings(settings.get_profile("hostile"))
@given(body=bodies, status=statuses, compressed=st.booleans())
def test_any_answer_is_a_build_or_one_api_error(
    server: HostileApi, body: bytes, status: int, compressed: bool
) -> None:
    headers = {"Content-Encoding": "gzip"} if compressed else {}
    server.script("GET build", answer(status, gzip.compress(body) if compressed else body, headers))
    outcome = read_build(server.url)
    if isinstance(outcome, ApiError):
        assert outcome.message
        assert outcome.exit_code == 3
    else:
        assert isinstance(outcome, Build)
        assert 200 <= status < 300


def read_build(url: str) -> Build | ApiError:
    """The build the API answered, or the ApiError its answer became (anything else raises)."""
    api = client(url)
    try:
        return api.get_build(ServiceRef(PROJECT, "api"), "b-1", api.limits())
    except ApiError as error:
        return error


# -- the masking rule ------------------------------------------------------------------------------

secret_text = st.text(string.ascii_letters + string.digits + "-_.:/+=", min_size=8, max_size=30)
any_text = st.text(max_size=200)


@settings(settings.get_profile("hostile"))
@given(secret=secret_text, before=any_text, after=any_text)
def test_a_secret_of_8_characters_or_more_is_hidden_wherever_it_appears(
    secret: str, before: str, after: str
) -> None:
    masker = Masker()
    masker.add(secret)
    shown = masker.hide(before + secret + after)
    assert secret not in shown
    assert "***" in shown


@settings(settings.get_profile("hostile"))
@given(text=any_text)
def test_text_without_a_secret_is_left_as_it_is(text: str) -> None:
    masker = Masker()
    masker.add("a-secret-that-is-nowhere-" * 2)
    masker.add("k3y")
    if "a-secret-that-is-nowhere-" not in text and "k3y" not in text:
        assert masker.hide(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("k3y", "***"),
        ("token k3y.", "token ***."),
        ("(k3y)", "(***)"),
        ("k3yboard", "k3yboard"),
        ("mk3y", "mk3y"),
        ("k3y_x", "k3y_x"),
        ('"k3y"', '"***"'),
    ],
)
def test_a_short_secret_is_hidden_where_it_stands_alone(text: str, shown: str) -> None:
    masker = Masker()
    masker.add("k3y")
    assert masker.hide(text) == shown


@pytest.mark.parametrize("line", ["true", "False", "null", "on", "}", "---", "ab", "  {  "])
def test_short_lines_lines_without_letters_and_common_words_are_not_secrets(line: str) -> None:
    masker = Masker()
    assert masker.add(f"first-secret-line\n{line}\nlast") == [
        "first-secret-line\n" + line + "\nlast",
        "first-secret-line",
    ]
    assert masker.hide(f"success: {line.strip()} true") == f"success: {line.strip()} true"


def test_the_token_is_hidden_whatever_it_is() -> None:
    masker = Masker()
    assert masker.add("on", always=True) == []
    assert masker.hide("on and on, not one") == "*** and ***, not one"


def test_every_form_of_a_secret_is_hidden() -> None:
    masker = Masker()
    secret = 'pa"ss\\wörd-1'
    masker.add(secret)
    for form in (
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        "pa%22ss%5Cw%C3%B6rd-1",
        "cGEic3Ncd8O2cmQtMQ==",
    ):
        assert masker.hide(f"x {form} y") == "x *** y", form


def test_many_secrets_are_found_as_few_are() -> None:
    few, many = Masker(), Masker()
    lines = [f"line-{n:04d}-secret" for n in range(FEW * 4)]
    few.add(lines[7])
    many.add("\n".join(lines))
    text = f"a {lines[7]} b {lines[7]}{lines[8]} c line-0007-secre"
    assert many.hide(text) == "a *** b *** c line-0007-secre"
    assert few.hide(f"a {lines[7]} b") == "a *** b"


def test_overlapping_secrets_are_hidden_as_one() -> None:
    masker = Masker()
    masker.add("abcdefgh-1234\nefgh-1234-wxyz")
    assert masker.hide("<abcdefgh-1234-wxyz>") == "<***>"


# -- what the console prints ---------------------------------------------------------------------


@settings(settings.get_profile("hostile"))
@given(text=st.text())
def test_nothing_printed_holds_a_control_character(text: str) -> None:
    out = io.StringIO()
    GitHubConsole(out).info(text)
    Console(out, out).error(text)
    printed = out.getvalue()
    assert not any((ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F for c in printed), (
        repr(printed)
    )


def test_sanitize_removes_escape_sequences_and_keeps_the_text() -> None:
    text = "a\x1b[1;31mred\x1b[0m \x1b]8;;https://x\x07link\x1b]8;;\x07 \x9b2J\x1bcz\tz\r\nn"
    assert sanitize(text) == "ared link 2Jz\tz\nn"


def test_a_long_line_is_cut_in_the_middle() -> None:
    text = "a" * LINE_LIMIT + "the end"
    short = shorten(text)
    assert len(short) <= LINE_LIMIT
    assert short.startswith("aaa")
    assert short.endswith("the end")
    assert "characters left out" in short


class ClosedStream(io.StringIO):
    """A stream whose reader is gone: every write fails as on a closed pipe."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stream_never_raises_and_is_written_to_no_more() -> None:
    stream = ClosedStream()
    console = GitHubConsole(stream)
    console.add_secret(TOKEN, token=True)
    console.info("one")
    console.error("two")
    with console.group("three"):
        console.warning("four")
    assert stream.writes == 1


def test_secrets_that_share_their_start_are_each_found_at_their_own_length() -> None:
    masker = Masker()
    lines = [f"export SECRET_{n}={'x' * (n % 7)}" for n in range(FEW * 3)]
    masker.add("\n".join(lines))
    assert masker.hide(f"a {lines[5]} b") == "a *** b"
    assert masker.hide(f"a {lines[5]}yz b") == "a ***yz b"
    assert masker.hide("a export SECRET_9999 b") == "a export SECRET_9999 b"


# -- YAML and JSON inputs ----------------------------------------------------------------------

scalars = st.text(string.ascii_letters + string.digits + " -_.:/", max_size=8)
yaml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(scalars, inner, max_size=3),
    max_leaves=12,
)


def parsed_or_refusal(text: str) -> dict[str, str] | str:
    try:
        return parse_build_arguments(text)
    except ValueError as error:
        return str(error)


@settings(settings.get_profile("hostile"))
@given(value=st.dictionaries(scalars, yaml_values, min_size=1, max_size=4), anchor=st.booleans())
def test_a_yaml_input_is_a_mapping_of_plain_values_or_one_clear_refusal(
    value: dict[str, object], anchor: bool
) -> None:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=None)
    if anchor:
        text = f"base: &base {json.dumps(next(iter(value)))}\nother: *base\n" + text
    names_ok = all(k and not any(c.isspace() or c == "=" for c in k) for k in value)
    plain = all(isinstance(v, str) for v in value.values())
    outcome = parsed_or_refusal(text)
    if anchor or not plain or not names_ok:
        assert isinstance(outcome, str), (text, outcome)
        assert outcome
    else:
        assert outcome == value


@settings(settings.get_profile("hostile"))
@given(levels=st.integers(1, 3000), flow=st.booleans())
def test_nesting_of_any_depth_is_refused_without_recursing(levels: int, flow: bool) -> None:
    nested = "[" * levels + "]" * levels
    text = f"A: {nested}" if flow else f'{{"A": {nested}}}'
    with pytest.raises(ValueError, match=r"nest|must be a string"):
        parse_build_arguments(text)
