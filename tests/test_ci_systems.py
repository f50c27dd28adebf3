"""Every CI system end to end: the program as a subprocess with only that system's variables and
plain NORTHFLANK_* inputs (no GitHub variables), the emulator as the API. Each case asserts the
body the API received, the exit code and that stdout holds the outputs as one JSON object."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from northflank_build.console import AzureConsole, escape_azure_data, escape_azure_property
from northflank_build.context import detect
from northflank_build.context.model import SYSTEM_NAMES
from northflank_build.emulator import Emulator
from northflank_build.emulator.config import ServiceConfig
from tests.conftest import FAST, PROJECT, TOKEN, MakeEmulator, fast_world, started_builds
from tests.runner import Result, base_env, run

HEAD = "b4d6f8e0a1c3b5d7f9e8f2c4e6a0b1d3f5e7a9c2"
MERGE = "e6a0b1d3f5e7a9c2b4d6f8e0a1c3b5d7f9e8f2c4"
BRANCH = "feature/cart"

# A build service (…api) and a combined service (…web) per code host the systems link to.
SERVICES = {
    "gitlab-api": ServiceConfig("build", "https://gitlab.com/acme/api", phases=dict(FAST)),
    "gitlab-web": ServiceConfig(
        "combined", "https://gitlab.com/acme/web", "main", phases=dict(FAST)
    ),
    "bitbucket-api": ServiceConfig("build", "https://bitbucket.org/acme/api", phases=dict(FAST)),
    "bitbucket-web": ServiceConfig(
        "combined", "https://bitbucket.org/acme/web", "main", phases=dict(FAST)
    ),
}


def on_branch(**more: Any) -> dict[str, Any]:
    return {"sha": HEAD, "branch": BRANCH, **more}


def on_pull_request(number: int) -> dict[str, Any]:
    return {"sha": HEAD, "pullRequestId": number}


ON_TAG = {"sha": HEAD}
# The agent consumes this line and shows none of it.
SECRET_COMMAND = "##vso[task.setsecret]"


def gitlab(project: str, **variables: str) -> dict[str, str]:
    return {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PROJECT_URL": f"https://gitlab.com/acme/{project}",
        "CI_PIPELINE_URL": f"https://gitlab.com/acme/{project}/-/pipelines/1234",
        **variables,
    }


GITLAB_MR = {
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_COMMIT_REF_NAME": BRANCH,
    "CI_MERGE_REQUEST_IID": "17",
    "CI_MERGE_REQUEST_ID": "99887766",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": BRANCH,
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
}


def circleci(project: str, **variables: str) -> dict[str, str]:
    return {
        "CI": "true",
        "CIRCLECI": "true",
        "CIRCLE_SHA1": HEAD,
        "CIRCLE_REPOSITORY_URL": f"git@github.com:acme/{project}.git",
        **variables,
    }


def bitbucket(project: str, **variables: str) -> dict[str, str]:
    return {
        "CI": "true",
        "BITBUCKET_BUILD_NUMBER": "77",
        "BITBUCKET_COMMIT": HEAD,
        "BITBUCKET_REPO_FULL_NAME": f"acme/{project}",
        "BITBUCKET_GIT_HTTP_ORIGIN": f"http://bitbucket.org/acme/{project}",
        **variables,
    }


def azure(project: str, **variables: str) -> dict[str, str]:
    return {
        "TF_BUILD": "True",
        "BUILD_REPOSITORY_URI": f"https://github.com/acme/{project}",
        "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
        "SYSTEM_TEAMPROJECT": "Shop",
        "BUILD_BUILDID": "4321",
        **variables,
    }


AZURE_PR = {
    "BUILD_REASON": "PullRequest",
    "BUILD_SOURCEBRANCH": "refs/pull/31/merge",
    "BUILD_SOURCEBRANCHNAME": "merge",
    "BUILD_SOURCEVERSION": MERGE,
    "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "31",
    "SYSTEM_PULLREQUEST_PULLREQUESTID": "1587654321",
    "SYSTEM_PULLREQUEST_SOURCEBRANCH": BRANCH,
    "SYSTEM_PULLREQUEST_TARGETBRANCH": "main",
    "SYSTEM_PULLREQUEST_SOURCECOMMITID": HEAD,
    "SYSTEM_PULLREQUEST_ISFORK": "False",
}


def jenkins(project: str, **variables: str) -> dict[str, str]:
    return {
        "JENKINS_URL": "https://jenkins.acme.dev/",
        "BUILD_ID": "3",
        "BUILD_URL": f"https://jenkins.acme.dev/job/{project}/3/",
        "GIT_URL": f"https://github.com/acme/{project}.git",
        **variables,
    }


def buildkite(project: str, **variables: str) -> dict[str, str]:
    return {
        "CI": "true",
        "BUILDKITE": "true",
        "BUILDKITE_COMMIT": HEAD,
        "BUILDKITE_REPO": f"git@github.com:acme/{project}.git",
        "BUILDKITE_PULL_REQUEST": "false",
        "BUILDKITE_TAG": "",
        **variables,
    }


def travis(project: str, **variables: str) -> dict[str, str]:
    return {
        "CI": "true",
        "TRAVIS": "true",
        "TRAVIS_REPO_SLUG": f"acme/{project}",
        "TRAVIS_BUILD_WEB_URL": f"https://app.travis-ci.com/github/acme/{project}/builds/5",
        "TRAVIS_PULL_REQUEST": "false",
        "TRAVIS_EVENT_TYPE": "push",
        **variables,
    }


def drone(project: str, **variables: str) -> dict[str, str]:
    return {
        "CI": "true",
        "DRONE": "true",
        "DRONE_COMMIT_SHA": HEAD,
        "DRONE_REPO_LINK": f"https://github.com/acme/{project}",
        **variables,
    }


def woodpecker(project: str, **variables: str) -> dict[str, str]:
    return {
        "CI": "woodpecker",
        "CI_COMMIT_SHA": HEAD,
        "CI_REPO_URL": f"https://github.com/acme/{project}",
        **variables,
    }


def codebuild(project: str, **variables: str) -> dict[str, str]:
    return {
        "CODEBUILD_BUILD_ID": f"{project}:0b4e1d2c-3f5a-4b6c-8d7e-9f0a1b2c3d4e",
        "CODEBUILD_SOURCE_REPO_URL": f"https://github.com/acme/{project}.git",
        "CODEBUILD_RESOLVED_SOURCE_VERSION": HEAD,
        **variables,
    }


def cloudbuild(**variables: str) -> dict[str, str]:
    return {"BUILD_ID": "5f0c7b1e", "PROJECT_ID": "acme-prod", "COMMIT_SHA": HEAD, **variables}


CASES = [
    # GitLab CI
    pytest.param(
        gitlab(
            "api",
            CI_PIPELINE_SOURCE="push",
            CI_COMMIT_SHA=HEAD,
            CI_COMMIT_BRANCH=BRANCH,
            CI_COMMIT_REF_NAME=BRANCH,
        ),
        "gitlab-api",
        on_branch(),
        id="gitlab-branch",
    ),
    pytest.param(
        gitlab("api", **GITLAB_MR, CI_COMMIT_SHA=HEAD, CI_MERGE_REQUEST_SOURCE_BRANCH_SHA=""),
        "gitlab-api",
        on_pull_request(17),
        id="gitlab-merge-request",
    ),
    pytest.param(
        gitlab(
            "api",
            **GITLAB_MR,
            CI_COMMIT_SHA=MERGE,
            CI_MERGE_REQUEST_EVENT_TYPE="merged_result",
            CI_MERGE_REQUEST_SOURCE_BRANCH_SHA=HEAD,
        ),
        "gitlab-api",
        on_pull_request(17),
        id="gitlab-merged-results-head-not-merge-commit",
    ),
    pytest.param(
        gitlab(
            "web",
            CI_PIPELINE_SOURCE="push",
            CI_COMMIT_SHA=HEAD,
            CI_COMMIT_TAG="v1.2.0",
            CI_COMMIT_REF_NAME="v1.2.0",
        ),
        "gitlab-web",
        ON_TAG,
        id="gitlab-tag",
    ),
    # CircleCI
    pytest.param(circleci("api", CIRCLE_BRANCH=BRANCH), "api", on_branch(), id="circleci-branch"),
    pytest.param(
        circleci(
            "api",
            CIRCLE_BRANCH=BRANCH,
            CIRCLE_PULL_REQUEST="https://github.com/acme/api/pull/27",
        ),
        "api",
        on_branch(),
        id="circleci-push-to-a-branch-with-an-open-pull-request",
    ),
    pytest.param(
        circleci(
            "web",
            CIRCLE_BRANCH="main",
            CIRCLE_PULL_REQUEST="https://github.com/acme/web/pull/27",
        ),
        "web",
        ON_TAG,
        id="circleci-combined-service-not-refused-for-an-open-pull-request",
    ),
    pytest.param(
        circleci(
            "api",
            CIRCLE_BRANCH="pull/28",
            CIRCLE_PR_NUMBER="28",
            CIRCLE_PR_REPONAME="api",
            CIRCLE_PR_USERNAME="contributor",
            CIRCLE_PULL_REQUEST="https://github.com/acme/api/pull/28",
        ),
        "api",
        on_pull_request(28),
        id="circleci-fork-pull-request",
    ),
    pytest.param(circleci("web", CIRCLE_TAG="v1.2.0"), "web", ON_TAG, id="circleci-tag"),
    # Bitbucket Pipelines
    pytest.param(
        bitbucket("api", BITBUCKET_BRANCH=BRANCH),
        "bitbucket-api",
        on_branch(),
        id="bitbucket-branch",
    ),
    pytest.param(
        bitbucket(
            "api",
            BITBUCKET_BRANCH=BRANCH,
            BITBUCKET_PR_ID="12",
            BITBUCKET_PR_DESTINATION_BRANCH="main",
        ),
        "bitbucket-api",
        on_pull_request(12),
        id="bitbucket-pull-request",
    ),
    pytest.param(
        bitbucket("web", BITBUCKET_TAG="v1.2.0"), "bitbucket-web", ON_TAG, id="bitbucket-tag"
    ),
    # Azure Pipelines
    pytest.param(
        azure(
            "api",
            BUILD_REASON="IndividualCI",
            BUILD_SOURCEBRANCH=f"refs/heads/{BRANCH}",
            BUILD_SOURCEBRANCHNAME="cart",
            BUILD_SOURCEVERSION=HEAD,
        ),
        "api",
        on_branch(),
        id="azure-branch-full-name-not-last-segment",
    ),
    pytest.param(
        azure("api", **AZURE_PR), "api", on_pull_request(31), id="azure-pull-request-head"
    ),
    pytest.param(
        azure(
            "web",
            BUILD_REASON="IndividualCI",
            BUILD_SOURCEBRANCH="refs/tags/v1.2.0",
            BUILD_SOURCEBRANCHNAME="v1.2.0",
            BUILD_SOURCEVERSION=HEAD,
        ),
        "web",
        ON_TAG,
        id="azure-tag",
    ),
    # Jenkins
    pytest.param(
        jenkins("api", BRANCH_NAME=BRANCH, GIT_BRANCH=BRANCH, GIT_COMMIT=HEAD),
        "api",
        on_branch(),
        id="jenkins-multibranch-branch",
    ),
    pytest.param(
        jenkins("api", GIT_BRANCH=f"origin/{BRANCH}", GIT_COMMIT=HEAD),
        "api",
        on_branch(),
        id="jenkins-git-plugin-branch",
    ),
    pytest.param(
        jenkins(
            "api",
            BRANCH_NAME="PR-15",
            GIT_BRANCH="PR-15",
            GIT_COMMIT=MERGE,
            CHANGE_ID="15",
            CHANGE_BRANCH=BRANCH,
            CHANGE_TARGET="main",
        ),
        "api",
        {"pullRequestId": 15},
        id="jenkins-multibranch-pull-request-never-its-local-merge",
    ),
    pytest.param(
        jenkins(
            "api",
            ghprbPullId="16",
            ghprbActualCommit=HEAD,
            ghprbSourceBranch=BRANCH,
            ghprbTargetBranch="main",
            GIT_COMMIT=MERGE,
        ),
        "api",
        on_pull_request(16),
        id="jenkins-ghprb-pull-request",
    ),
    pytest.param(
        jenkins("web", TAG_NAME="v1.2.0", BRANCH_NAME="v1.2.0", GIT_COMMIT=HEAD),
        "web",
        ON_TAG,
        id="jenkins-tag",
    ),
    # Buildkite
    pytest.param(
        buildkite("api", BUILDKITE_BRANCH=BRANCH), "api", on_branch(), id="buildkite-branch"
    ),
    pytest.param(
        buildkite(
            "api",
            BUILDKITE_BRANCH=BRANCH,
            BUILDKITE_PULL_REQUEST="19",
            BUILDKITE_PULL_REQUEST_BASE_BRANCH="main",
        ),
        "api",
        on_pull_request(19),
        id="buildkite-pull-request",
    ),
    pytest.param(
        buildkite("web", BUILDKITE_BRANCH="v1.2.0", BUILDKITE_TAG="v1.2.0"),
        "web",
        ON_TAG,
        id="buildkite-tag",
    ),
    # Travis CI
    pytest.param(
        travis("api", TRAVIS_BRANCH=BRANCH, TRAVIS_COMMIT=HEAD),
        "api",
        on_branch(),
        id="travis-branch",
    ),
    pytest.param(
        travis(
            "api",
            TRAVIS_EVENT_TYPE="pull_request",
            TRAVIS_PULL_REQUEST="23",
            TRAVIS_BRANCH="main",
            TRAVIS_COMMIT=MERGE,
            TRAVIS_PULL_REQUEST_SHA=HEAD,
            TRAVIS_PULL_REQUEST_BRANCH=BRANCH,
        ),
        "api",
        on_pull_request(23),
        id="travis-pull-request-head-not-merge-commit",
    ),
    pytest.param(
        travis("web", TRAVIS_BRANCH="v1.2.0", TRAVIS_TAG="v1.2.0", TRAVIS_COMMIT=HEAD),
        "web",
        ON_TAG,
        id="travis-tag",
    ),
    # Drone
    pytest.param(
        drone("api", DRONE_BUILD_EVENT="push", DRONE_BRANCH=BRANCH),
        "api",
        on_branch(),
        id="drone-branch",
    ),
    pytest.param(
        drone(
            "api",
            DRONE_BUILD_EVENT="pull_request",
            DRONE_PULL_REQUEST="14",
            DRONE_BRANCH="main",
            DRONE_SOURCE_BRANCH=BRANCH,
            DRONE_TARGET_BRANCH="main",
        ),
        "api",
        on_pull_request(14),
        id="drone-pull-request",
    ),
    pytest.param(
        drone("web", DRONE_BUILD_EVENT="tag", DRONE_TAG="v1.2.0", DRONE_BRANCH="main"),
        "web",
        ON_TAG,
        id="drone-tag",
    ),
    # Woodpecker
    pytest.param(
        woodpecker("api", CI_PIPELINE_EVENT="push", CI_COMMIT_BRANCH=BRANCH),
        "api",
        on_branch(),
        id="woodpecker-branch",
    ),
    pytest.param(
        woodpecker(
            "api",
            CI_PIPELINE_EVENT="pull_request",
            CI_COMMIT_PULL_REQUEST="8",
            CI_COMMIT_BRANCH="main",
            CI_COMMIT_SOURCE_BRANCH=BRANCH,
            CI_COMMIT_TARGET_BRANCH="main",
        ),
        "api",
        on_pull_request(8),
        id="woodpecker-pull-request",
    ),
    pytest.param(
        woodpecker("web", CI_PIPELINE_EVENT="tag", CI_COMMIT_TAG="v1.2.0"),
        "web",
        ON_TAG,
        id="woodpecker-tag",
    ),
    # AWS CodeBuild
    pytest.param(
        codebuild(
            "api",
            CODEBUILD_WEBHOOK_EVENT="PUSH",
            CODEBUILD_WEBHOOK_TRIGGER=f"branch/{BRANCH}",
            CODEBUILD_WEBHOOK_HEAD_REF=f"refs/heads/{BRANCH}",
        ),
        "api",
        on_branch(),
        id="codebuild-branch",
    ),
    pytest.param(
        codebuild(
            "api",
            CODEBUILD_WEBHOOK_EVENT="PULL_REQUEST_UPDATED",
            CODEBUILD_WEBHOOK_TRIGGER="pr/9",
            CODEBUILD_WEBHOOK_HEAD_REF=f"refs/heads/{BRANCH}",
            CODEBUILD_WEBHOOK_BASE_REF="refs/heads/main",
            CODEBUILD_SOURCE_VERSION="pr/9",
        ),
        "api",
        on_pull_request(9),
        id="codebuild-pull-request",
    ),
    pytest.param(
        codebuild(
            "web",
            CODEBUILD_WEBHOOK_EVENT="PUSH",
            CODEBUILD_WEBHOOK_TRIGGER="tag/v1.2.0",
            CODEBUILD_WEBHOOK_HEAD_REF="refs/tags/v1.2.0",
        ),
        "web",
        ON_TAG,
        id="codebuild-tag",
    ),
    # Google Cloud Build (substitutions mapped to env by the step)
    pytest.param(
        cloudbuild(BRANCH_NAME=BRANCH, REF_NAME=BRANCH), "api", on_branch(), id="cloudbuild-branch"
    ),
    pytest.param(
        cloudbuild(_PR_NUMBER="11", _HEAD_BRANCH=BRANCH, _BASE_BRANCH="main"),
        "api",
        on_pull_request(11),
        id="cloudbuild-pull-request",
    ),
    pytest.param(
        cloudbuild(TAG_NAME="v1.2.0", REF_NAME="v1.2.0"), "web", ON_TAG, id="cloudbuild-tag"
    ),
    # No CI recognised: explicit inputs only
    pytest.param(
        {"CI": "true", "NORTHFLANK_BRANCH": BRANCH, "NORTHFLANK_SHA": HEAD},
        "api",
        on_branch(),
        id="none-explicit-inputs",
    ),
]


@pytest.fixture
def emulator(make_emulator: MakeEmulator) -> Emulator:
    return make_emulator(projects=fast_world(**SERVICES))


def northflank(tmp: Path, emulator: Emulator, service: str, ci: Mapping[str, str]) -> Result:
    """The program with one CI system's variables and NORTHFLANK_* inputs, outputs as JSON."""
    env = base_env(tmp)
    env.update(ci)
    env.update(
        {
            "NORTHFLANK_API_TOKEN": TOKEN,
            "NORTHFLANK_API_URL": emulator.url,
            "NORTHFLANK_PROJECT_ID": PROJECT,
            "NORTHFLANK_SERVICE_ID": service,
            "NORTHFLANK_WAIT": "false",
        }
    )
    return run(env, "--output-format", "json", tmp=tmp)


@pytest.mark.parametrize(("ci", "service", "body"), CASES)
def test_each_system_builds_the_right_target(
    tmp_path: Path, emulator: Emulator, ci: dict[str, str], service: str, body: dict[str, Any]
) -> None:
    result = northflank(tmp_path, emulator, service, ci)
    assert result.code == 0, result.text
    [start] = started_builds(emulator)
    assert start.body == body
    outputs = json.loads(result.stdout)
    assert outputs["result"] == "started"
    assert outputs["request"]["body"] == body
    shown = [line for line in result.text.splitlines() if not line.startswith(SECRET_COMMAND)]
    assert not any(TOKEN in line for line in shown)
    commands = [line for line in result.text.splitlines() if line.startswith(("::", "##"))]
    if "TF_BUILD" in ci:
        assert commands, "Azure Pipelines gets its logging commands"
        assert all(line.startswith("##vso[") for line in commands)
    else:
        assert commands == [], "outside GitHub and Azure no workflow or logging commands"


@pytest.mark.parametrize(
    ("ci", "service", "words"),
    [
        pytest.param(
            travis(
                "web",
                TRAVIS_EVENT_TYPE="pull_request",
                TRAVIS_PULL_REQUEST="23",
                TRAVIS_COMMIT=MERGE,
                TRAVIS_PULL_REQUEST_SHA=HEAD,
                TRAVIS_PULL_REQUEST_BRANCH=BRANCH,
            ),
            "web",
            "is a combined service, which deploys what it builds",
            id="combined-service-refused-on-a-pull-request",
        ),
        pytest.param(
            gitlab(
                "other",
                CI_PIPELINE_SOURCE="push",
                CI_COMMIT_SHA=HEAD,
                CI_COMMIT_BRANCH=BRANCH,
            ),
            "gitlab-api",
            "not this CI's repository https://gitlab.com/acme/other",
            id="another-repository-takes-nothing-from-the-ci",
        ),
        pytest.param(
            buildkite("api", BUILDKITE_BRANCH="v1.2.0", BUILDKITE_TAG="v1.2.0"),
            "api",
            "this Buildkite run is for a tag, which names no branch",
            id="build-service-on-a-tag-needs-a-branch",
        ),
        pytest.param(
            {"CI": "true"},
            "api",
            "the CI context (no CI system) gave neither",
            id="no-ci-and-no-branch",
        ),
    ],
)
def test_nothing_is_started_where_the_ci_context_cannot_decide(
    tmp_path: Path, emulator: Emulator, ci: dict[str, str], service: str, words: str
) -> None:
    result = northflank(tmp_path, emulator, service, ci)
    assert result.code == 2, result.text
    assert started_builds(emulator) == []
    assert words in result.stderr
    # --output-format json: a pipeline into jq reads one object saying what went wrong.
    outputs = json.loads(result.stdout)
    assert outputs["result"] == "error"
    assert outputs["build-id"] == ""
    assert outputs["error"]["exit-code"] == 2
    assert f"error: {outputs['error']['message']}" in result.stderr


def test_fork_pull_request_without_token_names_its_ci(tmp_path: Path, emulator: Emulator) -> None:
    ci = azure("api", **{**AZURE_PR, "SYSTEM_PULLREQUEST_ISFORK": "True"})
    env = base_env(tmp_path)
    env.update(ci)
    env.update({"NORTHFLANK_PROJECT_ID": PROJECT, "NORTHFLANK_SERVICE_ID": "api"})
    result = run(env, tmp=tmp_path)
    assert result.code == 2
    [error] = [line for line in result.stdout.splitlines() if "type=error" in line]
    assert "pull request from a fork, and Azure Pipelines withholds secrets" in error
    assert "GitHub" not in error


# -- Azure Pipelines: logging commands -------------------------------------------------------

AZURE_LINE = re.compile(
    r"##vso\[(?:task\.setsecret"
    r"|task\.setvariable variable=NORTHFLANK_[A-Z_]+;isoutput=true"
    r"|task\.logissue type=(?:error|warning))\][^\r\n]*"
)


def azure_unescape(text: str) -> str:
    """What the agent makes of an escaped value (Command.cs: mappings, then %AZP25)."""
    for token, escaped in ((";", "%3B"), ("\r", "%0D"), ("\n", "%0A"), ("]", "%5D")):
        text = text.replace(escaped, token)
    return text.replace("%AZP25", "%")


def azure_variables(text: str) -> dict[str, str]:
    pattern = re.compile(r"##vso\[task\.setvariable variable=([^;\]]+);isoutput=true\](.*)")
    return {m[1]: azure_unescape(m[2]) for m in map(pattern.fullmatch, text.splitlines()) if m}


def test_azure_registers_the_token_first_and_sets_output_variables(
    tmp_path: Path, emulator: Emulator
) -> None:
    ci = azure(
        "api",
        BUILD_REASON="IndividualCI",
        BUILD_SOURCEBRANCH=f"refs/heads/{BRANCH}",
        BUILD_SOURCEVERSION=HEAD,
    )
    env = base_env(tmp_path)
    env.update(ci)
    env.update(
        {
            "NORTHFLANK_API_TOKEN": TOKEN,
            "NORTHFLANK_API_URL": emulator.url,
            "NORTHFLANK_PROJECT_ID": PROJECT,
            "NORTHFLANK_SERVICE_ID": "api",
            "NORTHFLANK_POLL_INTERVAL": "0.1",
            "NORTHFLANK_OUTPUTS_FILE": str(tmp_path / "outputs.json"),
        }
    )
    result = run(env, tmp=tmp_path)
    assert result.code == 0, result.text
    lines = result.stdout.splitlines()
    assert lines[0] == f"##vso[task.setsecret]{TOKEN}"
    assert [line for line in result.text.splitlines() if TOKEN in line] == [lines[0]]
    commands = [line for line in lines if "##vso[" in line]
    assert [line for line in commands if not AZURE_LINE.fullmatch(line)] == []
    assert not any(line.startswith("::") for line in lines)
    written = json.loads((tmp_path / "outputs.json").read_text(encoding="utf-8"))
    variables = azure_variables(result.stdout)
    assert set(variables) == {"NORTHFLANK_" + k.upper().replace("-", "_") for k in written}
    assert variables["NORTHFLANK_RESULT"] == "success"
    assert variables["NORTHFLANK_BUILD_ID"] == written["build-id"]
    assert json.loads(variables["NORTHFLANK_REQUEST"]) == written["request"]
    assert json.loads(variables["NORTHFLANK_BUILD"]) == written["build"]


def test_azure_error_is_a_logged_issue_after_the_secret(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    env.update(azure("api"))
    env.update({"NORTHFLANK_API_TOKEN": TOKEN, "NORTHFLANK_SERVICE_ID": "api"})
    result = run(env, tmp=tmp_path)
    assert result.code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == f"##vso[task.setsecret]{TOKEN}"
    errors = [line for line in lines if line.startswith("##vso[task.logissue type=error]")]
    assert errors
    assert any("project-id" in line for line in errors)
    assert all(AZURE_LINE.fullmatch(line) for line in errors)


@pytest.mark.parametrize(
    "text",
    [
        "100% done",
        "a;b]c=d",
        "line\r\nnext",
        "%0A%3B%5D%AZP25%",
        "##vso[task.complete result=Failed]",
    ],
)
def test_azure_escaping_survives_the_agents_unescaping(text: str) -> None:
    assert azure_unescape(escape_azure_data(text)) == text
    assert azure_unescape(escape_azure_property(text)) == text
    assert not set(escape_azure_data(text)) & {"\r", "\n"}
    assert not set(escape_azure_property(text)) & {"\r", "\n", ";", "]"}


def test_azure_console_passes_no_command_on_from_elsewhere() -> None:
    out = io.StringIO()
    console = AzureConsole(out)
    console.add_secret("s3cr3t%value")
    console.lines(
        [
            "step 3 ##vso[task.setvariable variable=NORTHFLANK_RESULT]success",
            "  ##[error]not ours",
            "::error::not ours either",
            "uses s3cr3t%value",
        ]
    )
    with console.group("Build ##vso[task.complete result=Failed] log"):
        console.warning("a;b]c\nd", title="Careful")
    lines = out.getvalue().splitlines()
    assert lines[0] == "##vso[task.setsecret]s3cr3t%AZP25value"
    assert lines[1:5] == [
        "step 3 ## vso[task.setvariable variable=NORTHFLANK_RESULT]success",
        "|   ## [error]not ours",
        "| ::error::not ours either",
        "uses ***",
    ]
    assert lines[5:] == [
        "##[group]Build ## vso[task.complete result=Failed] log",
        "##vso[task.logissue type=warning]Careful: a;b]c%0Ad",
        "##[endgroup]",
    ]


def test_the_table_covers_every_system_but_github_by_name() -> None:
    contexts = [detect(case.values[0]) for case in CASES]  # type: ignore[arg-type]
    assert {c.system for c in contexts} == set(SYSTEM_NAMES) - {"github"}
    assert {c.name for c in contexts} <= set(SYSTEM_NAMES.values())
    for system in set(SYSTEM_NAMES) - {"github", "none"}:
        kinds = {c.ref_type for c in contexts if c.system == system}
        assert {"branch", "pull_request", "tag"} <= kinds, system


# -- --output-format json --------------------------------------------------------------------


def test_json_output_is_stdout_alone_on_github_too(tmp_path: Path, emulator: Emulator) -> None:
    env = base_env(tmp_path)
    env.update(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_SHA": HEAD,
            "GITHUB_REF": f"refs/heads/{BRANCH}",
            "GITHUB_REPOSITORY": "acme/api",
            "NORTHFLANK_API_TOKEN": TOKEN,
            "NORTHFLANK_API_URL": emulator.url,
            "NORTHFLANK_PROJECT_ID": PROJECT,
            "NORTHFLANK_SERVICE_ID": "api",
            "NORTHFLANK_DRY_RUN": "true",
        }
    )
    result = run(env, "--output-format", "json", tmp=tmp_path)
    assert result.code == 0, result.text
    outputs = json.loads(result.stdout)
    assert outputs["result"] == "dry-run"
    assert outputs["request"]["body"] == on_branch()
    assert f"::add-mask::{TOKEN}" in result.stderr
    assert started_builds(emulator) == []


def test_json_output_matches_the_outputs_file(tmp_path: Path, emulator: Emulator) -> None:
    env = base_env(tmp_path)
    env.update(
        {
            "NORTHFLANK_API_TOKEN": TOKEN,
            "NORTHFLANK_API_URL": emulator.url,
            "NORTHFLANK_PROJECT_ID": PROJECT,
            "NORTHFLANK_SERVICE_ID": "api",
            "NORTHFLANK_BRANCH": "main",
            "NORTHFLANK_POLL_INTERVAL": "0.1",
            "NORTHFLANK_OUTPUTS_FILE": str(tmp_path / "outputs.json"),
        }
    )
    result = run(env, "--output-format=json", tmp=tmp_path)
    assert result.code == 0, result.text
    assert result.stdout.count("\n") == 1
    printed = json.loads(result.stdout)
    assert printed == json.loads((tmp_path / "outputs.json").read_text(encoding="utf-8"))
    assert printed["result"] == "success"
    assert printed["branch"] == "main"
    assert "succeeded" in result.stderr
