"""Every CI system but GitHub Actions, one detector each (variables: ci-environments.md).

Each detector returns None when its system is not the one running. On a pull or merge request
it gives the request's head commit, never a merge commit the CI made, and fills both the source
branch and the request number when known; on a tag it gives the commit and no branch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import quote, urlsplit

from northflank_build.context.model import (
    CiContext,
    EnvReader,
    branch_from_ref,
    event_of_run,
    kind_of_run,
    pr_number,
    same_repository,
    short_branch,
)

_PULL_URL = re.compile(r"/(?:pull|pull-requests|merge_requests)/([0-9]+)")
_JENKINS_CHANGE_BRANCH = re.compile(r"(?:PR|MR)-[0-9]+")
_CIRCLE_FORK_BRANCH = re.compile(r"pull/([0-9]+)")
# Travis CI's web address names the code host: /github/<owner>/<name>/builds/<id>.
_TRAVIS_HOSTS = {"github": "github.com", "bitbucket": "bitbucket.org", "gitlab": "gitlab.com"}
_S3_SOURCES = ("arn:", "s3://")
_MERGE_COMMIT_PIPELINES = {"merged_result": "merged results", "merge_train": "merge train"}


def detect_woodpecker(env: Mapping[str, str]) -> CiContext | None:
    """Woodpecker (CI=woodpecker); its CI_COMMIT_* names are GitLab's, hence it goes first."""
    read = EnvReader(env)
    if read.text("CI") != "woodpecker":
        return None
    event = read.text("CI_PIPELINE_EVENT", "CI_BUILD_EVENT")
    number = read.number("CI_COMMIT_PULL_REQUEST")
    is_pr = number is not None or (event or "").startswith("pull_request")
    tag = None if is_pr else read.text("CI_COMMIT_TAG")
    # CI_COMMIT_BRANCH is the target branch on pull requests.
    branch = read.text("CI_COMMIT_SOURCE_BRANCH" if is_pr else "CI_COMMIT_BRANCH")
    branch = None if tag else branch
    return CiContext(
        "woodpecker",
        sha=read.sha("CI_COMMIT_SHA"),
        branch=branch,
        pull_request_id=number,
        is_pull_request=is_pr,
        repository=read.text("CI_REPO_URL", "CI_REPO_LINK"),
        event=event or event_of_run(is_pr, tag),
        ref_type=kind_of_run(is_pr, tag, branch),
        run_url=read.text("CI_PIPELINE_URL", "CI_BUILD_LINK"),
        notes=tuple(read.notes),
    )


def detect_gitlab(env: Mapping[str, str]) -> CiContext | None:
    """GitLab CI (GITLAB_CI=true): merge request, external pull request, tag or branch pipelines."""
    read = EnvReader(env)
    if not read.is_true("GITLAB_CI"):
        return None
    source = read.text("CI_PIPELINE_SOURCE")
    if source == "merge_request_event" or read.text("CI_MERGE_REQUEST_IID"):
        context = _gitlab_merge_request(read)
    elif source == "external_pull_request_event":
        context = _gitlab_external_pull_request(read)
    else:
        tag = read.text("CI_COMMIT_TAG")
        # CI_COMMIT_REF_NAME may be a ref such as refs/merge-requests/17/head in child pipelines.
        ref_name = short_branch(read.text("CI_COMMIT_REF_NAME"))
        branch = None if tag else read.text("CI_COMMIT_BRANCH") or ref_name
        ref_type = kind_of_run(False, tag, branch)
        context = CiContext("gitlab", read.sha("CI_COMMIT_SHA"), branch, ref_type=ref_type)
    return replace(
        context,
        repository=context.repository or read.text("CI_PROJECT_URL"),
        event=source,
        run_url=read.text("CI_PIPELINE_URL", "CI_JOB_URL"),
        notes=tuple(read.notes),
    )


def _gitlab_merge_request(read: EnvReader) -> CiContext:
    source_project = read.text("CI_MERGE_REQUEST_SOURCE_PROJECT_ID")
    project = read.text("CI_MERGE_REQUEST_PROJECT_ID", "CI_PROJECT_ID")
    return CiContext(
        "gitlab",
        sha=_gitlab_merge_request_sha(read),
        branch=read.text("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"),
        pull_request_id=read.number("CI_MERGE_REQUEST_IID"),
        is_pull_request=True,
        ref_type="pull_request",
        fork=bool(source_project and project and source_project != project),
    )


def _gitlab_external_pull_request(read: EnvReader) -> CiContext:
    """A GitHub pull request of a repository GitLab mirrors: CI_PROJECT_URL is the mirror."""
    head = read.text("CI_EXTERNAL_PULL_REQUEST_SOURCE_REPOSITORY")
    base = read.text("CI_EXTERNAL_PULL_REQUEST_TARGET_REPOSITORY")
    return CiContext(
        "gitlab",
        repository=f"https://github.com/{base}" if base else None,
        sha=read.sha("CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_SHA", "CI_COMMIT_SHA"),
        branch=read.text("CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME"),
        pull_request_id=read.number("CI_EXTERNAL_PULL_REQUEST_IID"),
        is_pull_request=True,
        ref_type="pull_request",
        fork=bool(head and base and head.lower() != base.lower()),
    )


def _gitlab_merge_request_sha(read: EnvReader) -> str | None:
    """The merge request's head: merged-results and merge-train pipelines run a merge commit."""
    head = read.sha("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA")
    pipeline = _MERGE_COMMIT_PIPELINES.get(read.text("CI_MERGE_REQUEST_EVENT_TYPE") or "")
    if head is not None:
        commit = read.sha("CI_COMMIT_SHA")
        if commit not in (None, head):
            read.note(
                f"CI_COMMIT_SHA is a merge commit; building the merge request's head {head[:7]}"
            )
        return head
    if pipeline is not None:
        read.note(
            f"CI_COMMIT_SHA is the {pipeline} merge commit and CI_MERGE_REQUEST_SOURCE_BRANCH_SHA "
            "is empty; leaving the commit to Northflank (the merge request's latest)"
        )
        return None
    return read.sha("CI_COMMIT_SHA")


def detect_circleci(env: Mapping[str, str]) -> CiContext | None:
    """CircleCI (CIRCLECI=true): a push to a branch, or a pull request from a fork.

    CircleCI builds pushes. CIRCLE_PULL_REQUEST only says that the pushed branch has an open pull
    request, so such a run builds the branch, as a push does (and a combined service is not
    refused); its number is kept. A fork's pull request is built as the branch "pull/<n>", which
    exists in no repository, with CIRCLE_PR_NUMBER set: that run is a pull request.
    """
    read = EnvReader(env)
    if not read.is_true("CIRCLECI"):
        return None
    tag = read.text("CIRCLE_TAG")
    branch = None if tag else read.text("CIRCLE_BRANCH")
    fork_branch = _CIRCLE_FORK_BRANCH.fullmatch(branch or "")
    if fork_branch:
        branch = None
    found = _PULL_URL.search(read.text("CIRCLE_PULL_REQUEST") or "")
    number = read.number("CIRCLE_PR_NUMBER") or pr_number(
        found[1] if found else fork_branch[1] if fork_branch else None
    )
    is_pr = fork_branch is not None or read.text("CIRCLE_PR_NUMBER") is not None
    if number is not None and not is_pr and branch is not None:
        read.note(
            f"{branch} has pull request #{number} open; building the branch, as CircleCI built "
            "a push (give pull-request-id to build the pull request)"
        )
    return CiContext(
        "circleci",
        sha=read.sha("CIRCLE_SHA1"),
        branch=branch,
        pull_request_id=number,
        is_pull_request=is_pr,
        repository=read.text("CIRCLE_REPOSITORY_URL"),
        event=event_of_run(is_pr, tag),
        ref_type=kind_of_run(is_pr, tag, branch),
        fork=bool(read.text("CIRCLE_PR_NUMBER", "CIRCLE_PR_REPONAME")),
        run_url=read.text("CIRCLE_BUILD_URL"),
        notes=tuple(read.notes),
    )


def detect_bitbucket(env: Mapping[str, str]) -> CiContext | None:
    """Bitbucket Pipelines (BITBUCKET_BUILD_NUMBER); BITBUCKET_BRANCH is the PR's source."""
    read = EnvReader(env)
    build = read.text("BITBUCKET_BUILD_NUMBER")
    if build is None:
        return None
    number = read.number("BITBUCKET_PR_ID")
    is_pr = number is not None
    tag = read.text("BITBUCKET_TAG")
    branch = None if tag else read.text("BITBUCKET_BRANCH")
    name = read.text("BITBUCKET_REPO_FULL_NAME")
    return CiContext(
        "bitbucket",
        sha=read.sha("BITBUCKET_COMMIT"),
        branch=branch,
        pull_request_id=number,
        is_pull_request=is_pr,
        repository=read.text("BITBUCKET_GIT_HTTP_ORIGIN"),
        event=event_of_run(is_pr, tag),
        ref_type=kind_of_run(is_pr, tag, branch),
        run_url=f"https://bitbucket.org/{name}/pipelines/results/{build}" if name else None,
        notes=tuple(read.notes),
    )


def detect_azure(env: Mapping[str, str]) -> CiContext | None:
    """Azure Pipelines (TF_BUILD=True); BUILD_SOURCEVERSION is a merge commit on pull requests."""
    read = EnvReader(env)
    if not read.is_true("TF_BUILD"):
        return None
    reason = read.text("BUILD_REASON")
    number = read.number("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", "SYSTEM_PULLREQUEST_PULLREQUESTID")
    is_pr = reason == "PullRequest" or number is not None
    source_ref = read.text("BUILD_SOURCEBRANCH")
    tag = source_ref if source_ref and source_ref.startswith("refs/tags/") and not is_pr else None
    if is_pr:
        sha = read.sha("SYSTEM_PULLREQUEST_SOURCECOMMITID")
        if sha is None:
            read.note(
                "BUILD_SOURCEVERSION is the pull request's merge commit and "
                "SYSTEM_PULLREQUEST_SOURCECOMMITID is empty; leaving the commit to Northflank"
            )
        # Documented as refs/heads/<name>, seen as the bare name: take either.
        branch = short_branch(read.text("SYSTEM_PULLREQUEST_SOURCEBRANCH"))
    else:
        sha = read.sha("BUILD_SOURCEVERSION")
        # Never BUILD_SOURCEBRANCHNAME: it keeps only the last segment of feature/x.
        branch = branch_from_ref(source_ref)
    collection = read.text("SYSTEM_COLLECTIONURI", "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI")
    project, build_id = read.text("SYSTEM_TEAMPROJECT"), read.text("BUILD_BUILDID")
    run_url = None
    if collection and project and build_id:
        run_url = f"{collection.rstrip('/')}/{quote(project)}/_build/results?buildId={build_id}"
    return CiContext(
        "azure",
        sha=sha,
        branch=branch,
        pull_request_id=number,
        is_pull_request=is_pr,
        repository=read.text("BUILD_REPOSITORY_URI"),
        event=reason or event_of_run(is_pr, tag),
        ref_type=kind_of_run(is_pr, tag, branch),
        fork=is_pr and read.is_true("SYSTEM_PULLREQUEST_ISFORK"),
        run_url=run_url,
        notes=tuple(read.notes),
    )


def detect_buildkite(env: Mapping[str, str]) -> CiContext | None:
    """Buildkite (BUILDKITE=true); BUILDKITE_PULL_REQUEST is a number or "false"."""
    read = EnvReader(env)
    if not read.is_true("BUILDKITE"):
        return None
    number = read.number("BUILDKITE_PULL_REQUEST")
    is_pr = number is not None
    tag = None if is_pr else read.text("BUILDKITE_TAG")
    branch = None if tag else read.text("BUILDKITE_BRANCH")
    # Fork branches may be shown as "owner:branch"; git forbids ':' in branch names.
    branch = (branch.rpartition(":")[2] or None) if branch else None
    repository = read.text("BUILDKITE_REPO")
    head_repository = read.text("BUILDKITE_PULL_REQUEST_REPO")
    fork = bool(is_pr and repository and head_repository)
    fork = fork and not same_repository(repository or "", head_repository or "")
    return CiContext(
        "buildkite",
        sha=read.sha("BUILDKITE_COMMIT"),
        branch=branch,
        pull_request_id=number,
        is_pull_request=is_pr,
        repository=repository,
        event=event_of_run(is_pr, tag),
        ref_type=kind_of_run(is_pr, tag, branch),
        fork=fork,
        run_url=read.text("BUILDKITE_BUILD_URL"),
        notes=tuple(read.notes),
    )


def detect_travis(env: Mapping[str, str]) -> CiContext | None:
    """Travis CI (TRAVIS=true); on PRs TRAVIS_COMMIT is a merge and TRAVIS_BRANCH the target."""
    read = EnvReader(env)
    if not read.is_true("TRAVIS"):
        return None
    event = read.text("TRAVIS_EVENT_TYPE")
    number = read.number("TRAVIS_PULL_REQUEST")
    is_pr = number is not None or event == "pull_request"
    tag = None if is_pr else read.text("TRAVIS_TAG")
    if is_pr:
        sha = read.sha("TRAVIS_PULL_REQUEST_SHA")
        if sha is None:
            read.note("TRAVIS_PULL_REQUEST_SHA is empty and TRAVIS_COMMIT is a merge commit")
        branch = read.text("TRAVIS_PULL_REQUEST_BRANCH")
    else:
        sha = read.sha("TRAVIS_COMMIT")
        branch = None if tag else read.text("TRAVIS_BRANCH")
    slug = read.text("TRAVIS_REPO_SLUG")
    head_slug = read.text("TRAVIS_PULL_REQUEST_SLUG")
    return CiContext(
        "travis",
        sha=sha,
        branch=branch,
        pull_request_id=number,
        is_pull_request=is_pr,
        repository=_travis_repository(slug, read.text("TRAVIS_BUILD_WEB_URL")),
        event=event or event_of_run(is_pr, tag),
        ref_type=kind_of_run(is_pr, tag, branch),
        fork=bool(is_pr and slug and head_slug and slug.lower() != head_slug.lower()),
        run_url=read.text("TRAVIS_BUILD_WEB_URL"),
        notes=tuple(read.notes),
    )


def _travis_repository(slug: str | None, web_url: str | None) -> str | None:
    """host/owner/name: the host from the build's web address, else GitHub, Travis' first."""
    if slug is None:
        return None
    vcs = urlsplit(web_url or "").path.strip("/").partition("/")[0]
    return f"{_TRAVIS_HOSTS.get(vcs, 'github.com')}/{slug}"


def detect_drone(env: Mapping[str, str]) -> CiContext | None:
    """Drone (DRONE=true, or CI=drone in old versions); DRONE_BRANCH is a PR's target."""
    read = EnvReader(env)
    if not read.is_true("DRONE") and read.text("CI") != "drone":
        return None
    event = read.text("DRONE_BUILD_EVENT")
    number = read.number("DRONE_PULL_REQUEST")
    is_pr = number is not None or event == "pull_request"
    tag = None if is_pr else read.text("DRONE_TAG")
    if is_pr:
        branch = read.text("DRONE_SOURCE_BRANCH")
    elif tag:
        branch = None
    else:
        branch = read.text("DRONE_BRANCH", "DRONE_COMMIT_BRANCH")
    return CiContext(
        "drone",
        sha=read.sha("DRONE_COMMIT_SHA", "DRONE_COMMIT"),
        branch=branch,
        pull_request_id=number,
        is_pull_request=is_pr,
        repository=read.text("DRONE_REPO_LINK"),
        event=event or event_of_run(is_pr, tag),
        ref_type=kind_of_run(is_pr, tag, branch),
        run_url=read.text("DRONE_BUILD_LINK"),
        notes=tuple(read.notes),
    )


def detect_codebuild(env: Mapping[str, str]) -> CiContext | None:
    """AWS CodeBuild (CODEBUILD_BUILD_ID); webhook builds say `pr/1`, `branch/x` or `tag/v1`."""
    read = EnvReader(env)
    build_id = read.text("CODEBUILD_BUILD_ID")
    if build_id is None:
        return None
    event = read.text("CODEBUILD_WEBHOOK_EVENT")
    # Without a webhook, the source version the build was started with says the same thing.
    trigger = read.text("CODEBUILD_WEBHOOK_TRIGGER") or _codebuild_source(read)
    kind, _, name = (trigger or "").partition("/")
    head_ref = read.text("CODEBUILD_WEBHOOK_HEAD_REF")
    is_pr = kind == "pr" or (event or "").startswith("PULL_REQUEST")
    tag = name if kind == "tag" else None
    if kind == "tag":
        branch = None
    elif kind == "branch":
        branch = name or None
    else:
        branch = branch_from_ref(head_ref)
    region = read.text("AWS_REGION")
    run_url = None
    if region:
        run_url = (
            f"https://console.aws.amazon.com/codebuild/home?region={region}"
            f"#/builds/{build_id}/view/new"
        )
    return CiContext(
        "codebuild",
        sha=read.sha("CODEBUILD_RESOLVED_SOURCE_VERSION"),
        branch=branch,
        pull_request_id=pr_number(name) if kind == "pr" else None,
        is_pull_request=is_pr,
        repository=_codebuild_repository(read.text("CODEBUILD_SOURCE_REPO_URL")),
        event=event or event_of_run(is_pr, tag),
        ref_type=kind_of_run(is_pr, tag, branch),
        run_url=run_url,
        notes=tuple(read.notes),
    )


def _codebuild_repository(url: str | None) -> str | None:
    """The source repository; None for an S3 artifact (CodePipeline), which names no repository."""
    if url is None or url.startswith(_S3_SOURCES):
        return None
    return url


def _codebuild_source(read: EnvReader) -> str | None:
    """CODEBUILD_SOURCE_VERSION as a trigger; a bare name may be a branch or a tag, so no guess."""
    version = read.text("CODEBUILD_SOURCE_VERSION")
    if version is None or re.fullmatch(r"[0-9a-fA-F]{40}", version):
        return None
    if version.startswith(_S3_SOURCES):
        return None
    if version.startswith("pr/"):
        return version
    for prefix, kind in (("refs/heads/", "branch/"), ("refs/tags/", "tag/")):
        if version.startswith(prefix):
            return kind + version.removeprefix(prefix)
    read.note(
        f"CODEBUILD_SOURCE_VERSION {version!r} may be a branch or a tag; give branch to build one"
    )
    return None


def detect_cloudbuild(env: Mapping[str, str]) -> CiContext | None:
    """Google Cloud Build: its substitutions reach the step only when mapped to env.

    Detected on BUILD_ID + PROJECT_ID + (COMMIT_SHA or REVISION_ID), as a step gets them with
    `options: automapSubstitutions: true` or `env: ['COMMIT_SHA=$COMMIT_SHA', ...]`.
    """
    read = EnvReader(env)
    build_id, project = read.text("BUILD_ID"), read.text("PROJECT_ID")
    if not (build_id and project and read.text("COMMIT_SHA", "REVISION_ID")):
        return None
    number = read.number("_PR_NUMBER")
    head_branch = read.text("_HEAD_BRANCH")
    is_pr = number is not None or head_branch is not None
    tag = None if is_pr else read.text("TAG_NAME")
    if is_pr:
        branch = head_branch
    elif tag:
        branch = None
    else:
        branch = read.text("BRANCH_NAME")
    location = read.text("LOCATION")
    region = f";region={location}" if location and location != "global" else ""
    return CiContext(
        "cloudbuild",
        sha=read.sha("COMMIT_SHA", "REVISION_ID"),
        branch=branch,
        pull_request_id=number,
        is_pull_request=is_pr,
        event=event_of_run(is_pr, tag),
        ref_type=kind_of_run(is_pr, tag, branch),
        run_url=f"https://console.cloud.google.com/cloud-build/builds{region}/{build_id}"
        f"?project={project}",
        notes=tuple(read.notes),
    )


def detect_jenkins(env: Mapping[str, str]) -> CiContext | None:
    """Jenkins (JENKINS_URL): multibranch CHANGE_* and BRANCH_NAME, the ghprb plugin, git plugin."""
    read = EnvReader(env)
    if read.text("JENKINS_URL") is None:
        return None
    number = read.number("CHANGE_ID", "ghprbPullId")
    is_pr = read.text("CHANGE_ID", "ghprbPullId") is not None
    git_branch = read.text("GIT_BRANCH")
    tag = None
    if is_pr:
        branch = read.text("CHANGE_BRANCH", "ghprbSourceBranch")
        sha = read.sha("ghprbActualCommit")
        if sha is None:
            read.note(
                "GIT_COMMIT may be Jenkins' own merge of the pull request into its target; "
                "leaving the commit to Northflank (the pull request's latest)"
            )
    else:
        tag = read.text("TAG_NAME")
        if tag is None and git_branch and git_branch.startswith("refs/tags/"):
            tag = git_branch
        branch = None if tag else _jenkins_branch(read.text("BRANCH_NAME"), git_branch)
        sha = read.sha("GIT_COMMIT")
    return CiContext(
        "jenkins",
        sha=sha,
        branch=branch,
        pull_request_id=number,
        is_pull_request=is_pr,
        repository=read.text("GIT_URL"),
        event=event_of_run(is_pr, tag),
        ref_type=kind_of_run(is_pr, tag, branch),
        fork=is_pr and read.text("CHANGE_FORK") is not None,
        run_url=read.text("BUILD_URL"),
        notes=tuple(read.notes),
    )


def _jenkins_branch(branch_name: str | None, git_branch: str | None) -> str | None:
    """BRANCH_NAME unless it names a change (PR-1), else GIT_BRANCH without its remote."""
    if branch_name and not _JENKINS_CHANGE_BRANCH.fullmatch(branch_name):
        return branch_name
    if git_branch is None:
        return None
    if git_branch.startswith("refs/remotes/"):
        return git_branch.removeprefix("refs/remotes/").partition("/")[2] or None
    if git_branch.startswith("refs/"):
        return branch_from_ref(git_branch)
    name = git_branch.removeprefix("origin/")
    if name in ("HEAD", "detached") or _JENKINS_CHANGE_BRANCH.fullmatch(name):
        return None
    return name
