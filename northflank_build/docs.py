"""What is written from action.yml: `python -m northflank_build.docs`.

README.md's input and output tables, between marker comments, and northflank_build/action.json,
the copy of the inputs and outputs a run reads. `--check` exits 1 when either is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from northflank_build.inputs import (
    ACTION_COPY,
    action_copy_text,
    env_names,
    input_specs,
    load_action,
    output_specs,
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
        dotenv = "NORTHFLANK_" + spec.name.upper().replace("-", "_")
        lines.append(f"| `{spec.name}` | `{dotenv}` | {_cell(spec.description)} |")
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
    copy = ACTION_COPY.read_text(encoding="utf-8") if ACTION_COPY.is_file() else ""
    wanted = {
        README: (readme, render(readme)),
        ACTION_COPY: (copy, action_copy_text(load_action())),
    }
    stale = [path for path, (current, text) in wanted.items() if current != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.name} is out of date: run python -m northflank_build.docs")
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path][1], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
