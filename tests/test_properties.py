"""Properties of the parsers and writers, over generated input: any text either parses or is
refused with a ValueError (an input error, never a traceback), what is written parses back to the
same values, and nothing printed can be read by a runner as a command."""

from __future__ import annotations

import io
import json
import re
import string
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from northflank_build.console import GitHubConsole
from northflank_build.files import Folders
from northflank_build.inputs import load_action, output_specs, variable_name
from northflank_build.report import as_text, write_github_output, write_outputs_file
from northflank_build.settings import (
    MAX_TIMEOUT,
    SecretFile,
    parse_build_arguments,
    parse_duration,
    parse_secret_files,
)
from tests.runner import parse_output_file

OUTPUT_NAMES = [spec.name for spec in output_specs(load_action())]

settings.register_profile("suite", max_examples=60, deadline=None)
settings.load_profile("suite")

# Python's line breaks, a superset of the runner's: values meant for one line hold none of them.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
names = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_letters + "_"),
    st.text(string.ascii_letters + string.digits + "_.-", max_size=15),
)
one_line = st.text(st.characters(blacklist_characters=LINE_BREAKS, blacklist_categories=["Cs"]))
any_text = st.text(st.characters(blacklist_categories=["Cs"]))
segments = st.text(string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=8)
paths = st.lists(segments, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
YAML_SPECIALS = string.ascii_letters + string.digits + " \n\t:-#'\"{}[]!&*%@`,?|>~"
mixed = st.text(alphabet=st.sampled_from("ahm s.0123456789-:/{}[]\"'=#\n \t,") | st.characters())


def refused_or(parse: Any, text: str) -> Any:
    """The parse, or None when it refused the text with a ValueError (anything else fails)."""
    try:
        return parse(text)
    except ValueError as error:
        message = str(error)
    assert message, "a refusal says why"
    return None


# -- build-arguments -------------------------------------------------------------------------


@given(mixed)
def test_build_arguments_parse_or_are_refused(text: str) -> None:
    parsed = refused_or(parse_build_arguments, text)
    if parsed is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items())


@given(st.dictionaries(names, one_line, min_size=1))
def test_build_arguments_as_lines_parse_back(arguments: dict[str, str]) -> None:
    text = "\n".join(f"{key}={value}" for key, value in arguments.items())
    assert parse_build_arguments(text) == arguments


@given(st.dictionaries(names, any_text, min_size=1))
def test_build_arguments_as_json_parse_back(arguments: dict[str, str]) -> None:
    for text in (json.dumps(arguments), json.dumps(arguments, ensure_ascii=False, indent=2)):
        assert parse_build_arguments(text) == arguments


# -- build-files -----------------------------------------------------------------------------


def build_file_key(key: str) -> str | None:
    return None if key.startswith("/") and "//" not in key else f"path {key!r}"


@given(mixed)
def test_build_files_parse_or_are_refused(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:

        def parse(text: str) -> dict[str, SecretFile]:
            return parse_secret_files(text, folders=Folders(Path(folder)), key_check=build_file_key)

        parsed = refused_or(parse, text)
    if parsed is not None:
        assert all(isinstance(v, SecretFile) for v in parsed.values())


@given(st.dictionaries(paths, any_text, min_size=1))
def test_build_files_as_json_parse_back_to_the_same_bytes(files: dict[str, str]) -> None:
    expected = {path: SecretFile(content.encode()) for path, content in files.items()}
    for text in (json.dumps(files), json.dumps(files, ensure_ascii=False)):
        parsed = parse_secret_files(text, folders=Folders(Path(".")), key_check=build_file_key)
        assert parsed == expected


@given(st.dictionaries(paths, st.text(YAML_SPECIALS), min_size=1))
def test_build_files_as_yaml_parse_back(files: dict[str, str]) -> None:
    import yaml

    parsed = parse_secret_files(
        yaml.safe_dump(files), folders=Folders(Path(".")), key_check=build_file_key
    )
    assert parsed == {path: SecretFile(content.encode()) for path, content in files.items()}


# -- timeout ---------------------------------------------------------------------------------


@given(mixed)
def test_timeouts_parse_into_range_or_are_refused(text: str) -> None:
    seconds = refused_or(parse_duration, text)
    assert seconds is None or 0 < seconds <= MAX_TIMEOUT


@given(st.integers(0, 167), st.integers(0, 59), st.integers(0, 59))
def test_timeouts_in_every_spelling_mean_the_same(hours: int, minutes: int, secs: int) -> None:
    total = hours * 3600 + minutes * 60 + secs
    spellings = [f"{hours}h{minutes}m{secs}s", f"{total}", f"{total}s", f" {total}S "]
    if not secs:
        spellings.append(f"{hours}h{minutes}m")
    if total == 0:
        assert all(refused_or(parse_duration, s) is None for s in spellings)
    else:
        assert {parse_duration(s) for s in spellings} == {float(total)}


# -- outputs ---------------------------------------------------------------------------------

scalars = st.one_of(any_text, st.text(st.sampled_from("ab\n\r:=<>%\\")), st.just("ghadelimiter_x"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
output_values = st.fixed_dictionaries(
    {name: (json_values if name in ("request", "build") else scalars) for name in OUTPUT_NAMES}
)


def unescape_dotenv(value: str) -> str:
    return re.sub(
        r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), value, flags=re.DOTALL
    )


@given(output_values, output_values)
def test_github_output_parses_back_to_the_last_values(
    first: dict[str, Any], last: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "github_output"
        write_github_output(path, {"build-id": first["build-id"]})
        write_github_output(path, last)
        parsed = parse_output_file(path.read_bytes().decode("utf-8"))
    assert parsed == {name: as_text(value) for name, value in last.items()}


@given(output_values)
def test_outputs_files_parse_back_to_the_same_values(values: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        as_json, as_dotenv = Path(folder) / "outputs.json", Path(folder) / "outputs.env"
        write_outputs_file(as_json, values)
        write_outputs_file(as_dotenv, values)
        assert json.loads(as_json.read_text(encoding="utf-8")) == values
        lines = as_dotenv.read_bytes().decode("utf-8").split("\n")
    assert lines.pop() == ""
    pairs = dict(line.split("=", 1) for line in lines)
    assert list(pairs) == [variable_name(name) for name in values]
    assert {k: unescape_dotenv(v) for k, v in pairs.items()} == {
        variable_name(name): as_text(value) for name, value in values.items()
    }


# JSON can carry a lone surrogate (\\ud800), which UTF-8 cannot encode.
with_lone_surrogate = st.builds(
    lambda a, b, c: a + b + c, st.text(), st.characters(categories=["Cs"]), st.text()
)


@given(st.text() | with_lone_surrogate)
def test_writers_never_fail_on_text_from_the_api(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        write_github_output(Path(folder) / "out", {"message": text})
        write_outputs_file(Path(folder) / "o.env", {"message": text})
        parsed = parse_output_file((Path(folder) / "out").read_bytes().decode("utf-8"))
    assert set(parsed) == {"message"}


# -- the console -----------------------------------------------------------------------------


command_like = st.lists(
    st.sampled_from(["::", "##[", "##vso[", "##VSO[", "#", "[", "\n", "\r", " ", "\t", "\x0b", "%"])
    | st.text(max_size=4)
).map("".join)


@given(command_like | with_lone_surrogate)
def test_no_text_printed_as_information_is_a_workflow_command(text: str) -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", newline="")  # strict, as a pipe's stdout is
    console = GitHubConsole(out=out)
    console.info(text)
    console.warning(text)
    printed = raw.getvalue().decode("utf-8")
    for line in re.split(r"\r\n|\r|\n", printed):
        assert not line.lstrip().startswith("::") or line.startswith("::warning::")
        assert re.search(r"##(vso)?\[", line, re.IGNORECASE) is None or line.startswith("::")
    assert printed.count("\n") == max(1, len(text.splitlines())) + 1
