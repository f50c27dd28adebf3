"""Which commit, branch and pull request the current CI run is about, read from its environment.

Pure: no network, no printing, nothing from the rest of the package. The first system whose
marker is set wins, in this order:

1. GitHub Actions (GITHUB_ACTIONS=true): the event payload at GITHUB_EVENT_PATH, see github.py
2. Woodpecker (CI=woodpecker): before GitLab, because it shares the CI_COMMIT_* names
3. GitLab CI (GITLAB_CI=true)
4. CircleCI (CIRCLECI=true)
5. Bitbucket Pipelines (BITBUCKET_BUILD_NUMBER)
6. Azure Pipelines (TF_BUILD=True)
7. Buildkite (BUILDKITE=true)
8. Travis CI (TRAVIS=true)
9. Drone (DRONE=true, or CI=drone)
10. AWS CodeBuild (CODEBUILD_BUILD_ID)
11. Google Cloud Build (BUILD_ID + PROJECT_ID + COMMIT_SHA or REVISION_ID, substitutions the
    user maps to env); before Jenkins, which sets a BUILD_ID of its own but no PROJECT_ID
12. Jenkins (JENKINS_URL)
13. otherwise system "none", with nothing filled

Values that are empty, blank or "false" count as absent, as do commit SHAs that are not 40 hex
characters ("HEAD") and pull request numbers that are not positive integers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from northflank_build.context.github import detect_github
from northflank_build.context.model import CiContext, same_repository
from northflank_build.context.other_systems import (
    detect_azure,
    detect_bitbucket,
    detect_buildkite,
    detect_circleci,
    detect_cloudbuild,
    detect_codebuild,
    detect_drone,
    detect_gitlab,
    detect_jenkins,
    detect_travis,
    detect_woodpecker,
)

__all__ = ["CiContext", "detect", "same_repository"]

DETECTORS: tuple[Callable[[Mapping[str, str]], CiContext | None], ...] = (
    detect_github,
    detect_woodpecker,
    detect_gitlab,
    detect_circleci,
    detect_bitbucket,
    detect_azure,
    detect_buildkite,
    detect_travis,
    detect_drone,
    detect_codebuild,
    detect_cloudbuild,
    detect_jenkins,
)


def detect(env: Mapping[str, str]) -> CiContext:
    """The CI context of the run described by env (os.environ in production)."""
    for detector in DETECTORS:
        context = detector(env)
        if context is not None:
            return context
    return CiContext("none")
