"""README.md stays true to action.yml."""

from __future__ import annotations

import pytest

from northflank_build import docs
from northflank_build.inputs import input_specs, load_action, output_specs


def test_tables_are_written_from_action_yml() -> None:
    current = docs.README.read_text(encoding="utf-8")
    assert docs.render(current) == current, "run: python -m northflank_build.docs"


def test_every_input_and_output_has_a_row() -> None:
    text = docs.README.read_text(encoding="utf-8")
    action = load_action()
    for spec in input_specs(action):
        assert f"| `{spec.name}` | " in text
    for output in output_specs(action):
        assert f"| `{output.name}` | `NORTHFLANK_" in text


def test_replace_section_refuses_a_readme_without_markers() -> None:
    with pytest.raises(ValueError, match="inputs:start"):
        docs.replace_section("no markers here", "inputs", "x")


def test_quick_start_gives_the_two_commands() -> None:
    text = docs.README.read_text(encoding="utf-8")
    assert "make demo" in text
    assert "make test" in text
