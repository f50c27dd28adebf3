"""The CI context: which commit, branch and pull request each CI system's run is about."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from northflank_build.context import CiContext, detect, same_repository

EVENTS = Path(__file__).parent / "events"

# The SHAs in tests/events/*.json.
PUSH_SHA = "8f2c4e6a0b1d3f5e7a9c2b4d6f8e0a1c3b5d7f9e"
TAG_COMMIT = "5e7a9c2b4d6f8e0a1c3b5d7f9e8f2c4e6a0b1d3f"
TAG_OBJECT = "d3f5e7a9c2b4d6f8e0a1c3b5d7f9e8f2c4e6a0b1"
PR_HEAD = "4a6c8e0f2b4d6e8a0c2e4f6b8d0a2c4e6f8b0d2a"
PR_BASE = "2e4f6b8d0a2c4e6f8b0d2a4a6c8e0f2b4d6e8a0c"
PR_MERGE = "9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d"
GROUP_SHA = "7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9b1d3f5a"
GROUP_BASE = "3b5d7f9a1c3e5b7d9b1d3f5a7c9e1b3d5f7a9c1e"
RUN_SHA = "6f8b0d2a4a6c8e0f2b4d6e8a0c2e4f6b8d0a2c4e"
DEFAULT_TIP = "0a1c3b5d7f9e8f2c4e6a0b1d3f5e7a9c2b4d6f8e"

# Commits for the other CI systems.
HEAD = "b4d6f8e0a1c3b5d7f9e8f2c4e6a0b1d3f5e7a9c2"
MERGE = "e6a0b1d3f5e7a9c2b4d6f8e0a1c3b5d7f9e8f2c4"

QUEUE_BRANCH = f"gh-readonly-queue/main/pr-42-{GROUP_BASE}"


def essentials(context: CiContext) -> CiContext:
    """The context without links and notes, and with any refusal reduced to "refused"."""
    return replace(
        context,
        repository=None,
        run_url=None,
        notes=(),
        refusal="refused" if context.refusal else None,
    )


def github_env(event: str, payload: str | None, **variables: str) -> dict[str, str]:
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_REPOSITORY": "octo-org/octo-repo",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "9876543210",
        **variables,
    }
    if payload is not None:
        env["GITHUB_EVENT_PATH"] = str(EVENTS / payload)
    return env


def pull_request(
    event: str, number: int, *, fork: bool = False, refusal: str | None = None
) -> CiContext:
    return CiContext(
        "github",
        sha=PR_HEAD,
        pull_request_id=number,
        is_pull_request=True,
        event=event,
        ref_type="pull_request",
        fork=fork,
        refusal=refusal,
    )


PR_MERGE_REF = {"GITHUB_SHA": PR_MERGE, "GITHUB_REF": "refs/pull/42/merge"}
PR_TARGET_REF = {"GITHUB_SHA": PR_BASE, "GITHUB_REF": "refs/heads/main"}

GITHUB_CASES = [
    pytest.param(
        github_env(
            "push", "push.json", GITHUB_SHA=PUSH_SHA, GITHUB_REF="refs/heads/feature/login-form"
        ),
        CiContext("github", PUSH_SHA, "feature/login-form", event="push", ref_type="branch"),
        id="push-branch-with-slash",
    ),
    pytest.param(
        github_env("push", "push.json"),
        CiContext("github", PUSH_SHA, "feature/login-form", event="push", ref_type="branch"),
        id="push-payload-after-and-ref-when-variables-absent",
    ),
    pytest.param(
        github_env("push", "push-tag.json", GITHUB_SHA=TAG_COMMIT, GITHUB_REF="refs/tags/v1.2.0"),
        CiContext("github", TAG_COMMIT, event="push", ref_type="tag"),
        id="push-annotated-tag",
    ),
    pytest.param(
        github_env("push", "push-tag.json", GITHUB_REF="refs/tags/v1.2.0"),
        CiContext("github", TAG_COMMIT, event="push", ref_type="tag"),
        id="push-tag-head-commit-never-tag-object",
    ),
    pytest.param(
        github_env(
            "push",
            "push-delete.json",
            GITHUB_SHA=DEFAULT_TIP,
            GITHUB_REF="refs/heads/feature/old-idea",
        ),
        CiContext("github", event="push", ref_type="branch"),
        id="push-branch-deletion",
    ),
    pytest.param(
        github_env("pull_request", "pull_request.json", **PR_MERGE_REF),
        pull_request("pull_request", 42),
        id="pull_request-head-not-merge-commit",
    ),
    pytest.param(
        github_env("pull_request", "pull_request-fork.json", GITHUB_SHA=PR_MERGE),
        pull_request("pull_request", 43, fork=True, refusal="refused"),
        id="pull_request-from-fork-refused",
    ),
    pytest.param(
        github_env("pull_request", "pull_request-deleted-fork.json", GITHUB_SHA=PR_MERGE),
        pull_request("pull_request", 44, fork=True, refusal="refused"),
        id="pull_request-from-deleted-fork-refused",
    ),
    pytest.param(
        github_env("pull_request_target", "pull_request_target.json", **PR_TARGET_REF),
        pull_request("pull_request_target", 42),
        id="pull_request_target-same-repository",
    ),
    pytest.param(
        github_env("pull_request_target", "pull_request_target-fork.json", **PR_TARGET_REF),
        pull_request("pull_request_target", 43, fork=True, refusal="refused"),
        id="pull_request_target-from-fork-refused",
    ),
    pytest.param(
        github_env("pull_request_review", "pull_request_review.json", **PR_MERGE_REF),
        pull_request("pull_request_review", 42),
        id="pull_request_review",
    ),
    pytest.param(
        github_env(
            "pull_request_review_comment", "pull_request_review_comment.json", **PR_MERGE_REF
        ),
        pull_request("pull_request_review_comment", 42),
        id="pull_request_review_comment",
    ),
    pytest.param(
        github_env("pull_request_review_thread", "pull_request_review_thread.json", **PR_MERGE_REF),
        pull_request("pull_request_review_thread", 42),
        id="pull_request_review_thread",
    ),
    pytest.param(
        github_env(
            "merge_group",
            "merge_group.json",
            GITHUB_SHA=GROUP_SHA,
            GITHUB_REF=f"refs/heads/{QUEUE_BRANCH}",
        ),
        CiContext("github", GROUP_SHA, QUEUE_BRANCH, event="merge_group", ref_type="branch"),
        id="merge_group",
    ),
    pytest.param(
        github_env("merge_group", "merge_group.json"),
        CiContext("github", GROUP_SHA, QUEUE_BRANCH, event="merge_group", ref_type="branch"),
        id="merge_group-from-payload-alone",
    ),
    pytest.param(
        github_env(
            "workflow_run",
            "workflow_run.json",
            GITHUB_SHA=DEFAULT_TIP,
            GITHUB_REF="refs/heads/main",
        ),
        CiContext("github", RUN_SHA, "feature/login-form", event="workflow_run", ref_type="branch"),
        id="workflow_run-the-triggering-runs-commit",
    ),
    pytest.param(
        github_env(
            "workflow_run",
            "workflow_run-fork.json",
            GITHUB_SHA=DEFAULT_TIP,
            GITHUB_REF="refs/heads/main",
        ),
        CiContext(
            "github",
            RUN_SHA,
            "main",
            event="workflow_run",
            ref_type="branch",
            fork=True,
            refusal="refused",
        ),
        id="workflow_run-of-a-fork-refused",
    ),
    pytest.param(
        github_env(
            "workflow_dispatch",
            "workflow_dispatch.json",
            GITHUB_SHA=DEFAULT_TIP,
            GITHUB_REF="refs/heads/release/2024.05",
        ),
        CiContext(
            "github", DEFAULT_TIP, "release/2024.05", event="workflow_dispatch", ref_type="branch"
        ),
        id="workflow_dispatch-on-branch",
    ),
    pytest.param(
        github_env(
            "workflow_dispatch",
            "workflow_dispatch.json",
            GITHUB_SHA=TAG_COMMIT,
            GITHUB_REF="refs/tags/v1.2.0",
        ),
        CiContext("github", TAG_COMMIT, event="workflow_dispatch", ref_type="tag"),
        id="workflow_dispatch-on-tag",
    ),
    pytest.param(
        github_env(
            "schedule", "schedule.json", GITHUB_SHA=DEFAULT_TIP, GITHUB_REF="refs/heads/main"
        ),
        CiContext("github", DEFAULT_TIP, "main", event="schedule", ref_type="branch"),
        id="schedule",
    ),
    pytest.param(
        github_env("release", "release.json", GITHUB_SHA=TAG_COMMIT, GITHUB_REF="refs/tags/v1.2.0"),
        CiContext("github", TAG_COMMIT, event="release", ref_type="tag"),
        id="release",
    ),
    pytest.param(
        github_env(
            "repository_dispatch",
            "repository_dispatch.json",
            GITHUB_SHA=DEFAULT_TIP,
            GITHUB_REF="refs/heads/main",
        ),
        CiContext("github", DEFAULT_TIP, "main", event="repository_dispatch", ref_type="branch"),
        id="repository_dispatch",
    ),
    pytest.param(
        github_env("check_run", None, GITHUB_SHA=PR_MERGE, GITHUB_REF="refs/pull/7/merge"),
        CiContext("github", PR_MERGE, event="check_run"),
        id="other-event-never-a-pull-ref-as-branch",
    ),
    pytest.param(
        github_env("pull_request", None, **PR_MERGE_REF),
        CiContext(
            "github",
            pull_request_id=42,
            is_pull_request=True,
            event="pull_request",
            ref_type="pull_request",
        ),
        id="pull_request-without-payload-no-merge-commit",
    ),
    pytest.param(
        github_env("workflow_run", None, GITHUB_SHA=DEFAULT_TIP, GITHUB_REF="refs/heads/main"),
        CiContext("github", event="workflow_run"),
        id="workflow_run-without-payload",
    ),
]


@pytest.mark.parametrize(("env", "expected"), GITHUB_CASES)
def test_github_event_decides_commit_branch_and_pull_request(
    env: dict[str, str], expected: CiContext
) -> None:
    assert essentials(detect(env)) == expected


def test_github_links_point_at_the_repository_and_the_run() -> None:
    context = detect(github_env("push", "push.json"))
    assert context.repository == "https://github.com/octo-org/octo-repo"
    assert context.run_url == "https://github.com/octo-org/octo-repo/actions/runs/9876543210"


def test_github_enterprise_server_links_use_its_server_url() -> None:
    env = github_env("push", "push.json", GITHUB_SERVER_URL="https://git.acme.dev/")
    env.pop("GITHUB_RUN_ID")
    context = detect(env)
    assert context.repository == "https://git.acme.dev/octo-org/octo-repo"
    assert context.run_url is None


def test_github_repository_defaults_to_github_com_and_the_payload() -> None:
    env = github_env("push", "push.json")
    del env["GITHUB_SERVER_URL"], env["GITHUB_REPOSITORY"]
    assert detect(env).repository == "https://github.com/octo-org/octo-repo"


@pytest.mark.parametrize(
    ("env", "note"),
    [
        pytest.param(
            github_env("pull_request", "pull_request.json", **PR_MERGE_REF),
            "GITHUB_SHA is GitHub's merge commit; building the pull request's head 4a6c8e0 instead",
            id="merge-commit-replaced",
        ),
        pytest.param(
            github_env("pull_request_target", "pull_request_target.json", **PR_TARGET_REF),
            "GITHUB_SHA is the base branch's commit; building the pull request's head 4a6c8e0",
            id="base-commit-replaced",
        ),
        pytest.param(
            github_env("push", "push-delete.json", GITHUB_REF="refs/heads/feature/old-idea"),
            "this push deleted refs/heads/feature/old-idea; there is no commit to build",
            id="deleted-branch",
        ),
        pytest.param(
            github_env("push", None, GITHUB_SHA=PUSH_SHA),
            "GITHUB_EVENT_PATH is not set",
            id="no-payload",
        ),
        pytest.param(
            github_env("pull_request", None, **PR_MERGE_REF),
            "its head commit is unknown (GITHUB_SHA is not it)",
            id="pull-request-without-payload",
        ),
    ],
)
def test_github_notes_explain_the_choice(env: dict[str, str], note: str) -> None:
    assert any(note in line for line in detect(env).notes)


def test_github_plain_push_needs_no_notes() -> None:
    env = github_env(
        "push", "push.json", GITHUB_SHA=PUSH_SHA, GITHUB_REF="refs/heads/feature/login-form"
    )
    assert detect(env).notes == ()


def test_pull_request_target_from_fork_refusal_explains_the_danger_and_the_way_out() -> None:
    refusal = detect(
        github_env("pull_request_target", "pull_request_target-fork.json", **PR_TARGET_REF)
    ).refusal
    assert refusal is not None
    for words in (
        "pull request #43",
        "contributor/octo-repo",
        "secrets",
        "untrusted code",
        "build files and secret mounts",
        "pull-request-id",
    ):
        assert words in refusal


def test_pull_request_from_fork_refusal_says_the_repository_passes_secrets_to_forks() -> None:
    context = detect(github_env("pull_request", "pull_request-fork.json"))
    assert context.fork
    assert context.refusal is not None
    for words in ("pull request #43", "passes its secrets", "untrusted code", "pull-request-id"):
        assert words in context.refusal


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{not json", id="invalid-json"),
        pytest.param(b'["a", "list"]', id="not-an-object"),
        pytest.param(b"\xff\xfe\x00", id="not-utf-8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="too-deep"),
    ],
)
def test_github_unreadable_payload_falls_back_to_variables(tmp_path: Path, content: bytes) -> None:
    payload = tmp_path / "event.json"
    payload.write_bytes(content)
    env = github_env("push", None, GITHUB_SHA=PUSH_SHA, GITHUB_REF="refs/heads/main")
    env["GITHUB_EVENT_PATH"] = str(payload)
    context = detect(env)
    assert essentials(context) == CiContext(
        "github", PUSH_SHA, "main", event="push", ref_type="branch"
    )
    assert any(str(payload) in note for note in context.notes)


@pytest.mark.parametrize("name", ["missing.json", ""], ids=["missing-file", "a-directory"])
def test_github_missing_payload_falls_back_to_variables(tmp_path: Path, name: str) -> None:
    env = github_env("push", None, GITHUB_SHA=PUSH_SHA, GITHUB_REF="refs/heads/main")
    env["GITHUB_EVENT_PATH"] = str(tmp_path / name)
    context = detect(env)
    assert (context.sha, context.branch) == (PUSH_SHA, "main")
    assert any("could not read the event payload" in note for note in context.notes)


def branch_build(system: str, event: str = "push") -> CiContext:
    return CiContext(system, HEAD, "feature/cart", event=event, ref_type="branch")


def tag_build(system: str, event: str = "tag") -> CiContext:
    return CiContext(system, HEAD, event=event, ref_type="tag")


def pr_build(
    system: str, number: int, event: str = "pull_request", *, fork: bool = False
) -> CiContext:
    return CiContext(
        system,
        HEAD,
        "feature/cart",
        number,
        is_pull_request=True,
        event=event,
        ref_type="pull_request",
        fork=fork,
    )


GITLAB = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_PROJECT_ID": "101",
    "CI_PROJECT_URL": "https://gitlab.com/acme/shop",
    "CI_PIPELINE_URL": "https://gitlab.com/acme/shop/-/pipelines/1234",
}
GITLAB_MR = {
    **GITLAB,
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_COMMIT_REF_NAME": "feature/cart",
    "CI_MERGE_REQUEST_IID": "17",
    "CI_MERGE_REQUEST_ID": "99887766",
    "CI_MERGE_REQUEST_PROJECT_ID": "101",
    "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "101",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/cart",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
}
WOODPECKER = {
    "CI": "woodpecker",
    "CI_REPO_URL": "https://codeberg.org/acme/shop",
    "CI_PIPELINE_URL": "https://ci.codeberg.org/repos/12/pipeline/34",
    "CI_COMMIT_SHA": HEAD,
}
CIRCLECI = {
    "CI": "true",
    "CIRCLECI": "true",
    "CIRCLE_SHA1": HEAD,
    "CIRCLE_REPOSITORY_URL": "git@github.com:acme/shop.git",
    "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/shop/321",
}
BITBUCKET = {
    "CI": "true",
    "BITBUCKET_BUILD_NUMBER": "77",
    "BITBUCKET_COMMIT": HEAD,
    "BITBUCKET_REPO_FULL_NAME": "acme/shop",
    "BITBUCKET_GIT_HTTP_ORIGIN": "http://bitbucket.org/acme/shop",
}
AZURE = {
    "TF_BUILD": "True",
    "BUILD_REPOSITORY_URI": "https://github.com/acme/shop",
    "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
    "SYSTEM_TEAMPROJECT": "Shop Web",
    "BUILD_BUILDID": "4321",
}
AZURE_GITHUB_PR = {
    **AZURE,
    "BUILD_REASON": "PullRequest",
    "BUILD_SOURCEBRANCH": "refs/pull/31/merge",
    "BUILD_SOURCEBRANCHNAME": "merge",
    "BUILD_SOURCEVERSION": MERGE,
    "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "31",
    "SYSTEM_PULLREQUEST_PULLREQUESTID": "1587654321",
    "SYSTEM_PULLREQUEST_SOURCEBRANCH": "feature/cart",
    "SYSTEM_PULLREQUEST_TARGETBRANCH": "main",
    "SYSTEM_PULLREQUEST_SOURCECOMMITID": HEAD,
    "SYSTEM_PULLREQUEST_ISFORK": "False",
}
BUILDKITE = {
    "CI": "true",
    "BUILDKITE": "true",
    "BUILDKITE_COMMIT": HEAD,
    "BUILDKITE_REPO": "git@github.com:acme/shop.git",
    "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/shop/builds/88",
    "BUILDKITE_PULL_REQUEST": "false",
    "BUILDKITE_TAG": "",
}
BUILDKITE_PR = {
    **BUILDKITE,
    "BUILDKITE_PULL_REQUEST": "19",
    "BUILDKITE_BRANCH": "feature/cart",
    "BUILDKITE_PULL_REQUEST_BASE_BRANCH": "main",
    "BUILDKITE_PULL_REQUEST_REPO": "git://github.com/acme/shop.git",
}
TRAVIS = {
    "CI": "true",
    "TRAVIS": "true",
    "TRAVIS_REPO_SLUG": "acme/shop",
    "TRAVIS_BUILD_WEB_URL": "https://app.travis-ci.com/github/acme/shop/builds/555",
    "TRAVIS_PULL_REQUEST": "false",
    "TRAVIS_EVENT_TYPE": "push",
}
TRAVIS_PR = {
    **TRAVIS,
    "TRAVIS_EVENT_TYPE": "pull_request",
    "TRAVIS_PULL_REQUEST": "23",
    "TRAVIS_BRANCH": "main",
    "TRAVIS_COMMIT": MERGE,
    "TRAVIS_PULL_REQUEST_SHA": HEAD,
    "TRAVIS_PULL_REQUEST_BRANCH": "feature/cart",
    "TRAVIS_PULL_REQUEST_SLUG": "acme/shop",
}
DRONE = {
    "CI": "true",
    "DRONE": "true",
    "DRONE_COMMIT_SHA": HEAD,
    "DRONE_REPO_LINK": "https://github.com/acme/shop",
    "DRONE_BUILD_LINK": "https://drone.acme.dev/acme/shop/42",
}
CODEBUILD = {
    "CODEBUILD_BUILD_ID": "shop-build:0b4e1d2c-3f5a-4b6c-8d7e-9f0a1b2c3d4e",
    "AWS_REGION": "eu-west-1",
    "CODEBUILD_SOURCE_REPO_URL": "https://github.com/acme/shop.git",
    "CODEBUILD_RESOLVED_SOURCE_VERSION": HEAD,
}
CLOUDBUILD = {
    "BUILD_ID": "5f0c7b1e-2d3a-4c5b-9e8f-7a6b5c4d3e2f",
    "PROJECT_ID": "acme-prod",
    "LOCATION": "europe-west1",
    "REPO_NAME": "shop",
    "COMMIT_SHA": HEAD,
}
JENKINS = {
    "JENKINS_URL": "https://jenkins.acme.dev/",
    "BUILD_ID": "3",
    "BUILD_URL": "https://jenkins.acme.dev/job/shop/job/feature%252Fcart/3/",
    "GIT_URL": "https://github.com/acme/shop.git",
}
JENKINS_CHANGE = {
    **JENKINS,
    "BRANCH_NAME": "PR-15",
    "GIT_BRANCH": "PR-15",
    "GIT_COMMIT": MERGE,
    "CHANGE_ID": "15",
    "CHANGE_BRANCH": "feature/cart",
    "CHANGE_TARGET": "main",
}

OTHER_CASES = [
    # GitLab
    pytest.param(
        {
            **GITLAB,
            "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_SHA": HEAD,
            "CI_COMMIT_BRANCH": "feature/cart",
            "CI_COMMIT_REF_NAME": "feature/cart",
        },
        branch_build("gitlab"),
        id="gitlab-branch",
    ),
    pytest.param(
        {**GITLAB_MR, "CI_COMMIT_SHA": HEAD, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": ""},
        pr_build("gitlab", 17, event="merge_request_event"),
        id="gitlab-merge-request",
    ),
    pytest.param(
        {
            **GITLAB_MR,
            "CI_COMMIT_SHA": MERGE,
            "CI_MERGE_REQUEST_EVENT_TYPE": "merged_result",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": HEAD,
        },
        pr_build("gitlab", 17, event="merge_request_event"),
        id="gitlab-merged-results-head-not-merge-commit",
    ),
    pytest.param(
        {**GITLAB_MR, "CI_COMMIT_SHA": MERGE, "CI_MERGE_REQUEST_EVENT_TYPE": "merged_result"},
        replace(pr_build("gitlab", 17, event="merge_request_event"), sha=None),
        id="gitlab-merged-results-without-source-sha",
    ),
    pytest.param(
        {**GITLAB_MR, "CI_COMMIT_SHA": MERGE, "CI_MERGE_REQUEST_EVENT_TYPE": "merge_train"},
        replace(pr_build("gitlab", 17, event="merge_request_event"), sha=None),
        id="gitlab-merge-train-without-source-sha",
    ),
    pytest.param(
        {**GITLAB_MR, "CI_COMMIT_SHA": HEAD, "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "202"},
        pr_build("gitlab", 17, event="merge_request_event", fork=True),
        id="gitlab-merge-request-from-fork",
    ),
    pytest.param(
        {
            **GITLAB,
            "CI_PIPELINE_SOURCE": "external_pull_request_event",
            "CI_COMMIT_SHA": HEAD,
            "CI_COMMIT_REF_NAME": "feature/cart",
            "CI_EXTERNAL_PULL_REQUEST_IID": "5",
            "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME": "feature/cart",
            "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_SHA": HEAD,
            "CI_EXTERNAL_PULL_REQUEST_SOURCE_REPOSITORY": "contributor/shop",
            "CI_EXTERNAL_PULL_REQUEST_TARGET_REPOSITORY": "acme/shop",
        },
        pr_build("gitlab", 5, event="external_pull_request_event", fork=True),
        id="gitlab-external-pull-request",
    ),
    pytest.param(
        {
            **GITLAB,
            "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_SHA": HEAD,
            "CI_COMMIT_TAG": "v2.0.0",
            "CI_COMMIT_REF_NAME": "v2.0.0",
        },
        tag_build("gitlab", event="push"),
        id="gitlab-tag",
    ),
    pytest.param(
        {
            **GITLAB,
            "CI_PIPELINE_SOURCE": "parent_pipeline",
            "CI_COMMIT_SHA": HEAD,
            "CI_COMMIT_REF_NAME": "refs/merge-requests/17/head",
        },
        CiContext("gitlab", HEAD, event="parent_pipeline"),
        id="gitlab-ref-name-that-is-a-ref-is-no-branch",
    ),
    pytest.param(
        {
            **GITLAB,
            "CI_PIPELINE_SOURCE": "web",
            "CI_COMMIT_SHA": HEAD,
            "CI_COMMIT_REF_NAME": "feature/cart",
        },
        branch_build("gitlab", event="web"),
        id="gitlab-ref-name-when-commit-branch-is-absent",
    ),
    # Woodpecker
    pytest.param(
        {**WOODPECKER, "CI_PIPELINE_EVENT": "push", "CI_COMMIT_BRANCH": "feature/cart"},
        branch_build("woodpecker"),
        id="woodpecker-branch",
    ),
    pytest.param(
        {
            **WOODPECKER,
            "CI_PIPELINE_EVENT": "pull_request",
            "CI_COMMIT_PULL_REQUEST": "8",
            "CI_COMMIT_BRANCH": "main",
            "CI_COMMIT_SOURCE_BRANCH": "feature/cart",
            "CI_COMMIT_TARGET_BRANCH": "main",
        },
        pr_build("woodpecker", 8),
        id="woodpecker-pull-request-source-branch",
    ),
    pytest.param(
        {**WOODPECKER, "CI_PIPELINE_EVENT": "tag", "CI_COMMIT_TAG": "v1.0.0"},
        tag_build("woodpecker"),
        id="woodpecker-tag",
    ),
    pytest.param(
        {**WOODPECKER, "GITLAB_CI": "true", "CI_COMMIT_BRANCH": "feature/cart"},
        branch_build("woodpecker"),
        id="woodpecker-not-mistaken-for-gitlab",
    ),
    # CircleCI
    pytest.param(
        {**CIRCLECI, "CIRCLE_BRANCH": "feature/cart"},
        branch_build("circleci"),
        id="circleci-branch",
    ),
    pytest.param(
        {
            **CIRCLECI,
            "CIRCLE_BRANCH": "feature/cart",
            "CIRCLE_PULL_REQUEST": "https://github.com/acme/shop/pull/27",
        },
        replace(branch_build("circleci"), pull_request_id=27),
        id="circleci-push-to-a-branch-with-an-open-pull-request-is-a-push",
    ),
    pytest.param(
        {**CIRCLECI, "CIRCLE_BRANCH": "pull/29"},
        replace(pr_build("circleci", 29), branch=None),
        id="circleci-fork-pull-request-without-pr-variables",
    ),
    pytest.param(
        {
            **CIRCLECI,
            "CIRCLE_TAG": "v1.0.0",
            "CIRCLE_PULL_REQUEST": "https://github.com/acme/shop/pull/27",
        },
        replace(tag_build("circleci"), pull_request_id=27),
        id="circleci-tag-never-a-pull-request",
    ),
    pytest.param(
        {
            **CIRCLECI,
            "CIRCLE_BRANCH": "pull/28",
            "CIRCLE_PR_NUMBER": "28",
            "CIRCLE_PR_REPONAME": "shop",
            "CIRCLE_PR_USERNAME": "contributor",
            "CIRCLE_PULL_REQUEST": "https://github.com/acme/shop/pull/28",
        },
        replace(pr_build("circleci", 28, fork=True), branch=None),
        id="circleci-fork-pull-request",
    ),
    pytest.param(
        {**CIRCLECI, "CIRCLE_TAG": "v1.0.0"},
        tag_build("circleci"),
        id="circleci-tag",
    ),
    # Bitbucket
    pytest.param(
        {**BITBUCKET, "BITBUCKET_BRANCH": "feature/cart"},
        branch_build("bitbucket"),
        id="bitbucket-branch",
    ),
    pytest.param(
        {
            **BITBUCKET,
            "BITBUCKET_BRANCH": "feature/cart",
            "BITBUCKET_PR_ID": "12",
            "BITBUCKET_PR_DESTINATION_BRANCH": "main",
        },
        pr_build("bitbucket", 12),
        id="bitbucket-pull-request",
    ),
    pytest.param(
        {**BITBUCKET, "BITBUCKET_TAG": "v1.0.0"},
        tag_build("bitbucket"),
        id="bitbucket-tag",
    ),
    # Azure Pipelines
    pytest.param(
        {
            **AZURE,
            "BUILD_REASON": "IndividualCI",
            "BUILD_SOURCEBRANCH": "refs/heads/feature/cart",
            "BUILD_SOURCEBRANCHNAME": "cart",
            "BUILD_SOURCEVERSION": HEAD,
        },
        branch_build("azure", event="IndividualCI"),
        id="azure-branch-full-name-not-last-segment",
    ),
    pytest.param(
        AZURE_GITHUB_PR,
        pr_build("azure", 31, event="PullRequest"),
        id="azure-github-pull-request-number-not-id",
    ),
    pytest.param(
        {
            **AZURE_GITHUB_PR,
            "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "",
            "SYSTEM_PULLREQUEST_PULLREQUESTID": "56",
            "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/feature/cart",
        },
        pr_build("azure", 56, event="PullRequest"),
        id="azure-repos-pull-request-id-and-long-branch",
    ),
    pytest.param(
        {**AZURE_GITHUB_PR, "SYSTEM_PULLREQUEST_ISFORK": "True"},
        pr_build("azure", 31, event="PullRequest", fork=True),
        id="azure-pull-request-from-fork",
    ),
    pytest.param(
        {**AZURE_GITHUB_PR, "SYSTEM_PULLREQUEST_SOURCECOMMITID": ""},
        replace(pr_build("azure", 31, event="PullRequest"), sha=None),
        id="azure-pull-request-never-the-merge-commit",
    ),
    pytest.param(
        {
            **AZURE,
            "BUILD_REASON": "IndividualCI",
            "BUILD_SOURCEBRANCH": "refs/tags/v1.0.0",
            "BUILD_SOURCEBRANCHNAME": "v1.0.0",
            "BUILD_SOURCEVERSION": HEAD,
        },
        tag_build("azure", event="IndividualCI"),
        id="azure-tag",
    ),
    # Buildkite
    pytest.param(
        {**BUILDKITE, "BUILDKITE_BRANCH": "feature/cart"},
        branch_build("buildkite"),
        id="buildkite-branch-pull-request-false",
    ),
    pytest.param(BUILDKITE_PR, pr_build("buildkite", 19), id="buildkite-pull-request"),
    pytest.param(
        {
            **BUILDKITE_PR,
            "BUILDKITE_PULL_REQUEST": "20",
            "BUILDKITE_BRANCH": "contributor:feature/cart",
            "BUILDKITE_PULL_REQUEST_REPO": "git://github.com/contributor/shop.git",
        },
        pr_build("buildkite", 20, fork=True),
        id="buildkite-fork-pull-request",
    ),
    pytest.param(
        {**BUILDKITE, "BUILDKITE_BRANCH": "v1.0.0", "BUILDKITE_TAG": "v1.0.0"},
        tag_build("buildkite"),
        id="buildkite-tag",
    ),
    pytest.param(
        {**BUILDKITE, "BUILDKITE_BRANCH": "feature/cart", "BUILDKITE_COMMIT": "HEAD"},
        replace(branch_build("buildkite"), sha=None),
        id="buildkite-manual-build-commit-HEAD",
    ),
    # Travis CI
    pytest.param(
        {**TRAVIS, "TRAVIS_BRANCH": "feature/cart", "TRAVIS_COMMIT": HEAD},
        branch_build("travis"),
        id="travis-branch",
    ),
    pytest.param(TRAVIS_PR, pr_build("travis", 23), id="travis-pull-request-source-not-target"),
    pytest.param(
        {**TRAVIS_PR, "TRAVIS_PULL_REQUEST_SLUG": "contributor/shop"},
        pr_build("travis", 23, fork=True),
        id="travis-fork-pull-request",
    ),
    pytest.param(
        {**TRAVIS, "TRAVIS_BRANCH": "v1.0.0", "TRAVIS_TAG": "v1.0.0", "TRAVIS_COMMIT": HEAD},
        tag_build("travis", event="push"),
        id="travis-tag",
    ),
    # Drone
    pytest.param(
        {
            **DRONE,
            "DRONE_BUILD_EVENT": "push",
            "DRONE_BRANCH": "feature/cart",
            "DRONE_COMMIT_BRANCH": "feature/cart",
        },
        branch_build("drone"),
        id="drone-branch",
    ),
    pytest.param(
        {
            **DRONE,
            "DRONE_BUILD_EVENT": "pull_request",
            "DRONE_PULL_REQUEST": "14",
            "DRONE_BRANCH": "main",
            "DRONE_COMMIT_BRANCH": "main",
            "DRONE_SOURCE_BRANCH": "feature/cart",
            "DRONE_TARGET_BRANCH": "main",
        },
        pr_build("drone", 14),
        id="drone-pull-request-source-not-target",
    ),
    pytest.param(
        {**DRONE, "DRONE_BUILD_EVENT": "tag", "DRONE_TAG": "v1.0.0", "DRONE_BRANCH": "main"},
        tag_build("drone"),
        id="drone-tag",
    ),
    pytest.param(
        {
            "CI": "drone",
            "DRONE_COMMIT": HEAD,
            "DRONE_BRANCH": "feature/cart",
            "DRONE_REPO_LINK": "https://github.com/acme/shop",
        },
        branch_build("drone"),
        id="drone-old-variables",
    ),
    # AWS CodeBuild
    pytest.param(
        {
            **CODEBUILD,
            "CODEBUILD_WEBHOOK_EVENT": "PUSH",
            "CODEBUILD_WEBHOOK_TRIGGER": "branch/feature/cart",
            "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/feature/cart",
            "CODEBUILD_SOURCE_VERSION": HEAD,
        },
        branch_build("codebuild", event="PUSH"),
        id="codebuild-branch",
    ),
    pytest.param(
        {
            **CODEBUILD,
            "CODEBUILD_WEBHOOK_EVENT": "PULL_REQUEST_UPDATED",
            "CODEBUILD_WEBHOOK_TRIGGER": "pr/9",
            "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/feature/cart",
            "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main",
            "CODEBUILD_SOURCE_VERSION": "pr/9",
        },
        pr_build("codebuild", 9, event="PULL_REQUEST_UPDATED"),
        id="codebuild-pull-request",
    ),
    pytest.param(
        {
            **CODEBUILD,
            "CODEBUILD_WEBHOOK_EVENT": "PUSH",
            "CODEBUILD_WEBHOOK_TRIGGER": "tag/v1.0.0",
            "CODEBUILD_WEBHOOK_HEAD_REF": "refs/tags/v1.0.0",
        },
        tag_build("codebuild", event="PUSH"),
        id="codebuild-tag",
    ),
    pytest.param(
        {**CODEBUILD, "CODEBUILD_SOURCE_VERSION": "refs/heads/feature/cart"},
        branch_build("codebuild"),
        id="codebuild-started-on-a-branch-ref",
    ),
    pytest.param(
        {**CODEBUILD, "CODEBUILD_SOURCE_VERSION": "pr/9"},
        replace(pr_build("codebuild", 9), branch=None),
        id="codebuild-started-on-a-pull-request",
    ),
    pytest.param(
        {**CODEBUILD, "CODEBUILD_SOURCE_VERSION": "main"},
        CiContext("codebuild", HEAD, event="push"),
        id="codebuild-started-on-a-name-no-guess",
    ),
    pytest.param(
        {
            **CODEBUILD,
            "CODEBUILD_SOURCE_VERSION": "arn:aws:s3:::codepipeline-eu-west-1-1234/shop/Source/abc",
            "CODEBUILD_SOURCE_REPO_URL": "s3://codepipeline-eu-west-1-1234/shop/Source/abc",
        },
        CiContext("codebuild", HEAD, event="push"),
        id="codebuild-in-codepipeline-s3-source",
    ),
    # Google Cloud Build
    pytest.param(
        {**CLOUDBUILD, "BRANCH_NAME": "feature/cart", "REF_NAME": "feature/cart"},
        branch_build("cloudbuild"),
        id="cloudbuild-branch",
    ),
    pytest.param(
        {**CLOUDBUILD, "_PR_NUMBER": "11", "_HEAD_BRANCH": "feature/cart", "_BASE_BRANCH": "main"},
        pr_build("cloudbuild", 11),
        id="cloudbuild-pull-request",
    ),
    pytest.param(
        {**CLOUDBUILD, "TAG_NAME": "v1.0.0", "REF_NAME": "v1.0.0"},
        tag_build("cloudbuild"),
        id="cloudbuild-tag",
    ),
    # Jenkins
    pytest.param(
        {
            **JENKINS,
            "BRANCH_NAME": "feature/cart",
            "GIT_BRANCH": "feature/cart",
            "GIT_COMMIT": HEAD,
        },
        branch_build("jenkins"),
        id="jenkins-multibranch-branch",
    ),
    pytest.param(
        JENKINS_CHANGE,
        replace(pr_build("jenkins", 15), sha=None),
        id="jenkins-multibranch-pull-request-not-local-merge",
    ),
    pytest.param(
        {**JENKINS_CHANGE, "CHANGE_FORK": "contributor"},
        replace(pr_build("jenkins", 15, fork=True), sha=None),
        id="jenkins-multibranch-fork-pull-request",
    ),
    pytest.param(
        {**JENKINS, "GIT_BRANCH": "origin/feature/cart", "GIT_COMMIT": HEAD},
        branch_build("jenkins"),
        id="jenkins-git-plugin-origin-stripped",
    ),
    pytest.param(
        {**JENKINS, "GIT_BRANCH": "refs/remotes/upstream/feature/cart", "GIT_COMMIT": HEAD},
        branch_build("jenkins"),
        id="jenkins-git-plugin-other-remote-stripped",
    ),
    pytest.param(
        {**JENKINS, "BRANCH_NAME": "PR-15", "GIT_BRANCH": "PR-15", "GIT_COMMIT": HEAD},
        CiContext("jenkins", HEAD, event="push"),
        id="jenkins-PR-n-is-never-a-branch",
    ),
    pytest.param(
        {
            **JENKINS,
            "ghprbPullId": "16",
            "ghprbActualCommit": HEAD,
            "ghprbSourceBranch": "feature/cart",
            "ghprbTargetBranch": "main",
            "GIT_COMMIT": MERGE,
            "GIT_BRANCH": "origin/pr/16/merge",
        },
        pr_build("jenkins", 16),
        id="jenkins-ghprb-pull-request",
    ),
    pytest.param(
        {**JENKINS, "TAG_NAME": "v1.0.0", "BRANCH_NAME": "v1.0.0", "GIT_COMMIT": HEAD},
        tag_build("jenkins"),
        id="jenkins-tag",
    ),
]


@pytest.mark.parametrize(("env", "expected"), OTHER_CASES)
def test_other_ci_systems(env: dict[str, str], expected: CiContext) -> None:
    assert essentials(detect(env)) == expected


@pytest.mark.parametrize(
    ("env", "repository", "run_url"),
    [
        pytest.param(
            {**GITLAB, "CI_JOB_URL": "https://gitlab.com/acme/shop/-/jobs/5678"},
            "https://gitlab.com/acme/shop",
            "https://gitlab.com/acme/shop/-/pipelines/1234",
            id="gitlab",
        ),
        pytest.param(
            {
                **WOODPECKER,
                "CI_REPO_URL": "",
                "CI_REPO_LINK": "https://codeberg.org/acme/shop",
                "CI_PIPELINE_URL": "",
                "CI_BUILD_LINK": "https://ci.codeberg.org/acme/shop/34",
            },
            "https://codeberg.org/acme/shop",
            "https://ci.codeberg.org/acme/shop/34",
            id="woodpecker-before-1.0",
        ),
        pytest.param(
            WOODPECKER,
            "https://codeberg.org/acme/shop",
            "https://ci.codeberg.org/repos/12/pipeline/34",
            id="woodpecker",
        ),
        pytest.param(
            CIRCLECI,
            "git@github.com:acme/shop.git",
            "https://circleci.com/gh/acme/shop/321",
            id="circleci",
        ),
        pytest.param(
            BITBUCKET,
            "http://bitbucket.org/acme/shop",
            "https://bitbucket.org/acme/shop/pipelines/results/77",
            id="bitbucket",
        ),
        pytest.param(
            AZURE,
            "https://github.com/acme/shop",
            "https://dev.azure.com/acme/Shop%20Web/_build/results?buildId=4321",
            id="azure",
        ),
        pytest.param(
            BUILDKITE,
            "git@github.com:acme/shop.git",
            "https://buildkite.com/acme/shop/builds/88",
            id="buildkite",
        ),
        pytest.param(
            TRAVIS,
            "github.com/acme/shop",
            "https://app.travis-ci.com/github/acme/shop/builds/555",
            id="travis",
        ),
        pytest.param(
            {
                **TRAVIS,
                "TRAVIS_BUILD_WEB_URL": "https://app.travis-ci.com/bitbucket/acme/shop/builds/5",
            },
            "bitbucket.org/acme/shop",
            "https://app.travis-ci.com/bitbucket/acme/shop/builds/5",
            id="travis-bitbucket",
        ),
        pytest.param(
            {**CODEBUILD, "CODEBUILD_SOURCE_REPO_URL": "s3://codepipeline-bucket/shop/Source/abc"},
            None,
            "https://console.aws.amazon.com/codebuild/home?region=eu-west-1"
            "#/builds/shop-build:0b4e1d2c-3f5a-4b6c-8d7e-9f0a1b2c3d4e/view/new",
            id="codebuild-s3-source-names-no-repository",
        ),
        pytest.param(
            {
                **GITLAB,
                "CI_PIPELINE_SOURCE": "external_pull_request_event",
                "CI_EXTERNAL_PULL_REQUEST_TARGET_REPOSITORY": "acme/shop",
            },
            "https://github.com/acme/shop",
            "https://gitlab.com/acme/shop/-/pipelines/1234",
            id="gitlab-external-pull-request-the-github-repository-not-the-mirror",
        ),
        pytest.param(
            DRONE,
            "https://github.com/acme/shop",
            "https://drone.acme.dev/acme/shop/42",
            id="drone",
        ),
        pytest.param(
            CODEBUILD,
            "https://github.com/acme/shop.git",
            "https://console.aws.amazon.com/codebuild/home?region=eu-west-1"
            "#/builds/shop-build:0b4e1d2c-3f5a-4b6c-8d7e-9f0a1b2c3d4e/view/new",
            id="codebuild",
        ),
        pytest.param(
            CLOUDBUILD,
            None,
            "https://console.cloud.google.com/cloud-build/builds;region=europe-west1"
            "/5f0c7b1e-2d3a-4c5b-9e8f-7a6b5c4d3e2f?project=acme-prod",
            id="cloudbuild",
        ),
        pytest.param(
            JENKINS,
            "https://github.com/acme/shop.git",
            "https://jenkins.acme.dev/job/shop/job/feature%252Fcart/3/",
            id="jenkins",
        ),
    ],
)
def test_repository_and_run_links(
    env: dict[str, str], repository: str | None, run_url: str
) -> None:
    context = detect(env)
    assert (context.repository, context.run_url) == (repository, run_url)


@pytest.mark.parametrize(
    ("env", "note"),
    [
        pytest.param(
            {**GITLAB_MR, "CI_COMMIT_SHA": MERGE, "CI_MERGE_REQUEST_EVENT_TYPE": "merged_result"},
            "CI_COMMIT_SHA is the merged results merge commit",
            id="gitlab-merged-results-without-source-sha",
        ),
        pytest.param(
            {
                **GITLAB_MR,
                "CI_COMMIT_SHA": MERGE,
                "CI_MERGE_REQUEST_EVENT_TYPE": "merged_result",
                "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": HEAD,
            },
            "building the merge request's head b4d6f8e",
            id="gitlab-merged-results",
        ),
        pytest.param(
            {**AZURE_GITHUB_PR, "SYSTEM_PULLREQUEST_SOURCECOMMITID": ""},
            "BUILD_SOURCEVERSION is the pull request's merge commit",
            id="azure-pull-request-without-head",
        ),
        pytest.param(
            {**TRAVIS_PR, "TRAVIS_PULL_REQUEST_SHA": ""},
            "TRAVIS_COMMIT is a merge commit",
            id="travis-pull-request-without-head",
        ),
        pytest.param(
            JENKINS_CHANGE,
            "GIT_COMMIT may be Jenkins' own merge",
            id="jenkins-pull-request",
        ),
        pytest.param(
            {**BUILDKITE, "BUILDKITE_COMMIT": "HEAD"},
            "BUILDKITE_COMMIT is 'HEAD', not a 40-character commit SHA",
            id="buildkite-HEAD",
        ),
        pytest.param(
            {**CODEBUILD, "CODEBUILD_SOURCE_VERSION": "main"},
            "CODEBUILD_SOURCE_VERSION 'main' may be a branch or a tag",
            id="codebuild-bare-name",
        ),
        pytest.param(
            {
                **CIRCLECI,
                "CIRCLE_BRANCH": "feature/cart",
                "CIRCLE_PULL_REQUEST": "https://github.com/acme/shop/pull/27",
            },
            "feature/cart has pull request #27 open; building the branch",
            id="circleci-open-pull-request",
        ),
    ],
)
def test_other_systems_note_what_they_ignored(env: dict[str, str], note: str) -> None:
    assert any(note in line for line in detect(env).notes)


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("19", 19),
        (" 19 ", 19),
        ("false", None),
        ("", None),
        ("   ", None),
        ("0", None),
        ("-3", None),
        ("19a", None),
        ("\u00b2", None),
    ],
)
def test_pull_request_number_must_be_a_positive_integer(value: str, number: int | None) -> None:
    context = detect(
        {**BUILDKITE, "BUILDKITE_BRANCH": "feature/cart", "BUILDKITE_PULL_REQUEST": value}
    )
    assert (context.pull_request_id, context.is_pull_request) == (number, number is not None)


@pytest.mark.parametrize(
    ("value", "sha"),
    [
        (HEAD, HEAD),
        (f"  {HEAD}\n", HEAD),
        (HEAD.upper(), HEAD),
        ("HEAD", None),
        ("", None),
        ("   ", None),
        (HEAD[:12], None),
        (HEAD + "0", None),
        ("g" * 40, None),
        ("0" * 40, None),
    ],
)
def test_commit_must_be_40_hex_characters(value: str, sha: str | None) -> None:
    assert detect({**CIRCLECI, "CIRCLE_SHA1": value}).sha == sha


@pytest.mark.parametrize("value", ["", "  ", "false"])
def test_blank_branch_counts_as_absent(value: str) -> None:
    context = detect({**CIRCLECI, "CIRCLE_BRANCH": value})
    assert (context.branch, context.ref_type) == (None, None)


@pytest.mark.parametrize(
    ("env", "system"),
    [
        pytest.param({}, "none", id="nothing"),
        pytest.param({"CI": "true"}, "none", id="unknown-ci"),
        pytest.param({"GITHUB_ACTIONS": "false", "CI": "true"}, "none", id="github-actions-false"),
        pytest.param({**JENKINS, "GITHUB_ACTIONS": "true"}, "github", id="github-first"),
        pytest.param({**GITLAB, **WOODPECKER}, "woodpecker", id="woodpecker-before-gitlab"),
        pytest.param(
            {**JENKINS, "COMMIT_SHA": HEAD}, "jenkins", id="jenkins-build-id-not-cloudbuild"
        ),
        pytest.param({**CLOUDBUILD, **JENKINS}, "cloudbuild", id="cloudbuild-before-jenkins"),
        pytest.param({"TF_BUILD": "true"}, "azure", id="azure-lowercase-true"),
        pytest.param({"BITBUCKET_BUILD_NUMBER": "  "}, "none", id="blank-marker"),
    ],
)
def test_detection_order(env: dict[str, str], system: str) -> None:
    assert detect(env).system == system


def test_no_ci_fills_nothing() -> None:
    assert detect({"HOME": "/root"}) == CiContext("none")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://github.com/acme/shop", "git@github.com:acme/shop.git"),
        ("https://GitHub.com/Acme/Shop/", "github.com/acme/shop"),
        (
            "https://x-access-token:secret@github.com:443/acme/shop.git",
            "https://github.com/acme/shop",
        ),
        ("ssh://git@github.com:22/acme/shop.git", "github.com/acme/shop"),
        ("git://github.com/acme/shop.git", "https://github.com/acme/shop"),
        ("http://bitbucket.org/acme/shop", "git@bitbucket.org:acme/shop.git"),
        ("https://gitlab.com/group/sub/shop", "git@gitlab.com:group/sub/shop.git"),
        (
            "https://acme@dev.azure.com/acme/Shop/_git/shop",
            "https://dev.azure.com/acme/shop/_git/shop",
        ),
        ("github.com/acme/shop.git/", "GITHUB.COM/ACME/SHOP"),
    ],
)
def test_same_repository(a: str, b: str) -> None:
    assert same_repository(a, b)
    assert same_repository(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://github.com/acme/shop", "https://github.com/acme/shop-api"),
        ("https://github.com/acme/shop", "https://github.com/contributor/shop"),
        ("https://github.com/acme/shop", "https://gitlab.com/acme/shop"),
        ("https://gitlab.com/group/sub/shop", "https://gitlab.com/group/shop"),
        ("git@github.com:acme/shop.git", "git@github.com:acme/shopping.git"),
        ("", ""),
        ("github.com", "github.com"),
        ("https://github.com/", "https://github.com"),
    ],
)
def test_different_repositories(a: str, b: str) -> None:
    assert not same_repository(a, b)
