"""README.md's input and output tables, written from action.yml: `python -m northflank_build.docs`.

The tables sit between marker comments; `--check` exits 1 when they are out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from northflank_build.inputs import (
    env_names,
    input_specs,
    load_action,
    output_specs,
    variable_name,
)

README = Path(__file__).resolve().parent.parent / "README.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def inputs_table() -> str:
    lines = [
        "| input | default | environment variable | description |",
        "|---|---|---|---|",
    ]
    for spec in input_specs(load_action()):
        default = f"`{spec.default}`" if spec.default else ("(required)" if spec.required else "")
        names = [n for n in env_names(spec) if not n.startswith("INPUT_")]
        variables = ", ".join(f"`{n}`" for n in names)
        lines.append(f"| `{spec.name}` | {default} | {variables} | {_cell(spec.description)} |")
    return "\n".join(lines)


def outputs_table() -> str:
    lines = ["| output | dotenv name | description |", "|---|---|---|"]
    for spec in output_specs(load_action()):
        name, description = spec.name, _cell(spec.description)
        lines.append(f"| `{name}` | `{variable_name(name)}` | {description} |")
    return "\n".join(lines)


def replace_section(text: str, name: str, body: str) -> str:
    """text with the part between <!-- name:start --> and <!-- name:end --> set to body."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        raise ValueError(f"README.md lacks the markers {start} and {end}")
    return f"{head}{start}\n{body}\n{end}{rest.partition(end)[2]}"


def render(text: str) -> str:
    text = replace_section(text, "inputs", inputs_table())
    return replace_section(text, "outputs", outputs_table())


def main(argv: list[str]) -> int:
    readme = README.read_text(encoding="utf-8")
    wanted = render(readme)
    if "--check" in argv:
        if readme != wanted:
            print("README.md is out of date: run python -m northflank_build.docs")
        return 1 if readme != wanted else 0
    if readme != wanted:
        README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
