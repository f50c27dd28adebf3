"""The pipeline examples under examples/: each passes its CI system's schema (check-jsonschema's
built-in ones), runs the published image with plain NORTHFLANK_* variables, and is in README.md
word for word."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
# The one name the documentation gives the published image (README: "Every other CI system").
IMAGE = "ghcr.io/your-org/northflank-build-action:v1"

# Each example and the check-jsonschema arguments of every schema it must pass.
SCHEMAS: dict[str, list[list[str]]] = {
    "github-actions.yml": [
        ["--builtin-schema", "vendor.github-workflows"],
        ["--builtin-schema", "custom.github-workflows-require-timeout"],
    ],
    "gitlab-ci.yml": [["--builtin-schema", "vendor.gitlab-ci"]],
    "circleci.yml": [["--builtin-schema", "vendor.circle-ci"]],
    "bitbucket-pipelines.yml": [["--builtin-schema", "vendor.bitbucket-pipelines"]],
    "azure-pipelines.yml": [
        ["--builtin-schema", "vendor.azure-pipelines", "--regex-variant", "python"]
    ],
    "buildkite-pipeline.yml": [["--builtin-schema", "vendor.buildkite"]],
    "woodpecker.yml": [["--builtin-schema", "vendor.woodpecker-ci"]],
    "drone.yml": [["--builtin-schema", "vendor.drone-ci"]],
    "cloudbuild.yaml": [["--builtin-schema", "vendor.cloudbuild"]],
}
JENKINSFILE = "Jenkinsfile"


def example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_file())


def check_jsonschema(path: Path, arguments: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *arguments, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_example_is_checked() -> None:
    assert {p.name for p in example_files()} == {*SCHEMAS, JENKINSFILE}


@pytest.mark.parametrize(
    ("name", "arguments"),
    [(name, args) for name, schemas in SCHEMAS.items() for args in schemas],
    ids=lambda value: value if isinstance(value, str) else value[1],
)
def test_example_passes_its_systems_schema(name: str, arguments: list[str]) -> None:
    result = check_jsonschema(EXAMPLES / name, arguments)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_fails_on_a_broken_example(tmp_path: Path) -> None:
    broken = tmp_path / "gitlab-ci.yml"
    text = (EXAMPLES / "gitlab-ci.yml").read_text(encoding="utf-8")
    broken.write_text(text.replace("  script:", "  scripts:"), encoding="utf-8")
    result = check_jsonschema(broken, SCHEMAS["gitlab-ci.yml"][0])
    assert result.returncode == 1
    assert "scripts" in result.stdout


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_example_runs_the_image_with_plain_variables(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    images = set(re.findall(r"ghcr\.io/[\w./-]+(?::[\w.-]+)?", text))
    assert images == {IMAGE}
    for variable in ("NORTHFLANK_API_TOKEN", "NORTHFLANK_PROJECT_ID", "NORTHFLANK_SERVICE_ID"):
        assert variable in text
    assert "INPUT_" not in text
    # The token comes from the CI's secret store, never written into the file.
    literal = r"^\s*-?\s*NORTHFLANK_API_TOKEN[ \t]*[:=][ \t]*['\"]?[\w-]+['\"]?[ \t]*$"
    assert not re.search(literal, text, re.MULTILINE)


# An output pasted into a script's text runs as code: the outputs carry text from the API.
OUTPUT_IN_SCRIPT = {
    "azure-pipelines.yml": r"^\s*-?\s*(?:script|bash|pwsh|powershell):.*\$\(\w+\.NORTHFLANK_",
    "github-actions.yml": r"^\s*-?\s*run:.*\$\{\{\s*steps\.",
}


@pytest.mark.parametrize(("name", "pattern"), OUTPUT_IN_SCRIPT.items())
def test_no_example_pastes_an_output_into_a_scripts_text(name: str, pattern: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert re.search(pattern, text, re.MULTILINE) is None
    assert "NORTHFLANK_" in text or "outputs" in text


@pytest.mark.parametrize("path", [p for p in example_files() if p.name != JENKINSFILE])
def test_yaml_example_parses(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict)


def test_jenkinsfile_runs_the_image_with_a_credential_and_a_timeout() -> None:
    text = (EXAMPLES / JENKINSFILE).read_text(encoding="utf-8")
    assert re.search(r"docker \{ image '" + re.escape(IMAGE) + "' \\}", text)
    assert re.search(r"NORTHFLANK_API_TOKEN = credentials\('[\w-]+'\)", text)
    assert re.search(r"NORTHFLANK_PROJECT_ID = '[\w-]+'", text)
    assert re.search(r"NORTHFLANK_SERVICE_ID = '[\w-]+'", text)
    assert "sh 'exec northflank-build'" in text
    assert "timeout(time:" in text
    code = re.sub(r"//[^\n]*|'[^'\n]*'", "", text)
    depth = 0
    for char in code:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, "a } closes nothing"
    assert depth == 0, "unbalanced braces"


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_readme_shows_the_example_word_for_word(path: Path) -> None:
    readme = README.read_text(encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    assert re.search(r"```\w+\n" + re.escape(text) + "```", readme), f"README lacks {path.name}"


def test_readme_names_one_image() -> None:
    readme = README.read_text(encoding="utf-8")
    names = set(re.findall(r"ghcr\.io/[\w-]+/[\w-]+", readme))
    assert names == {IMAGE.partition(":")[0]}
    assert "ghcr.io/<owner>/<repository>" in readme
