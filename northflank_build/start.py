"""Start a build exactly once, though the network or the API fails on the way.

Starting a build is not idempotent, so the start request is sent again without a second thought
only when it provably never reached the API (no connection was made) or the API refused it with a
429. After a failure that leaves its fate unknown (a timeout or a reset after the body was sent, a
5xx, an unreadable answer), the service's builds are read first: a build of this request created
after the first such attempt began is adopted, and only when the search was complete and found
none is the request sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from northflank_build.client import Api, Limits, ServiceRef
from northflank_build.errors import ApiError
from northflank_build.model import Build

# Seconds by which a build's createdAt may precede the request, for clock skew: small when the
# API's Date header told us its clock, larger when it did not.
SKEW_KNOWN = 5.0
SKEW_UNKNOWN = 30.0
SETTLE = 5.0  # most seconds to give a slow API to finish the request before looking for its build
LIST_PER_PAGE = 100  # builds a page when looking for the one a start request created: the most
LIST_PAGES = 10  # pages read at most in one search: 1000 builds
MIN_PAGE_TIME = 0.2  # seconds: a page is not begun with less time left before the deadline
# Builds read once before starting, to find one to reuse (and time the polls): the API's largest
# page. The list's order is not documented; a service with more builds than this, listed in
# another order than newest first, may hide a reusable build, and then one is started.
REUSE_PAGE = 100


@dataclass(frozen=True)
class Started:
    """A build this run follows: started by it, or reused (started by someone else)."""

    service: ServiceRef
    build: Build
    reused: bool = False


def may_reuse(body: Mapping[str, Any], reuse: str) -> bool:
    """Whether a build may be reused for this request at all: reuse is on, the request names a
    commit, builds from git and has no overrides (the API does not tell which a build had)."""
    return reuse != "never" and "sha" in body and not {"overrides", "bundleUrl"} & set(body)


def reusable(builds: Sequence[Build], body: Mapping[str, Any], reuse: str) -> Build | None:
    """The build to follow instead of starting one, by the reuse input.

    Only a build of the same target (Build.made_for: the same commit, and the branch or pull
    request the request names) counts, and only when the request names a commit, builds from git
    and has no overrides (the API does not tell which overrides a build had). `success` takes the
    newest successful build, else the newest unfinished one; `running` only an unfinished one.
    """
    if not may_reuse(body, reuse):
        return None
    same = [b for b in builds if b.made_for(body)]
    done = [b for b in same if b.succeeded] if reuse == "success" else []
    going = [b for b in same if not b.concluded]
    return max(done or going, key=lambda b: b.created_at or 0.0, default=None)


@dataclass(frozen=True)
class Found:
    """The builds of a start request (oldest first), and how far the search for them went.

    complete: every page that could hold such a build was read; `read` builds were.
    """

    builds: tuple[Build, ...]
    complete: bool
    read: int


def builds_of_request(
    api: Api,
    service: ServiceRef,
    body: dict[str, Any],
    sent_at: float,
    limits: Limits,
    pages: int = LIST_PAGES,
) -> Found:
    """The one rule for "the build this run started": the service's builds of the request's
    target (Build.made_for) created, on the API's clock, no earlier than the request was sent at
    our Unix time `sent_at`.

    The list's order is undocumented, so it is read page by page (by cursor) until the list ends
    or a page shows that no later one can hold such a build: the list so far runs newest first
    and its last build predates the request. The search stops short (complete False) after
    `pages` pages, or when less than MIN_PAGE_TIME is left before the limits' deadline. Raises
    ApiError when a page cannot be read.
    """
    api_time = api.api_time(sent_at)
    since = sent_at - SKEW_UNKNOWN if api_time is None else api_time - SKEW_KNOWN
    seen: dict[str, Build] = {}
    newest_first, last = True, float("inf")  # createdAt never rose so far; the last one seen
    cursor: str | None = None
    complete = False
    for number in range(pages):
        page_limits = limits if number == 0 else _time_left(api, limits)
        if page_limits is None:
            break
        page = api.list_builds_page(service, page_limits, LIST_PER_PAGE, cursor)
        for build in page.builds:
            seen[build.id] = build
            if build.created_at is not None:
                newest_first = newest_first and build.created_at <= last
                last = build.created_at
        cursor = page.pages.next_cursor
        if page.pages.more is not True or (newest_first and last < since):
            complete = True  # the list ended, or the pages after this one are older still
            break
        if cursor is None:
            break  # more pages, but no cursor to ask for them
    found = [
        b
        for b in seen.values()
        if b.made_for(body) and b.created_at is not None and b.created_at >= since
    ]
    found.sort(key=lambda b: b.created_at or 0.0)
    return Found(tuple(found), complete, len(seen))


def _time_left(api: Api, limits: Limits) -> Limits | None:
    """The limits of a further page: none past the deadline, and no answer waited for past it."""
    if limits.deadline is None:
        return limits
    left = limits.deadline - api.clock()
    if left < MIN_PAGE_TIME:
        return None
    longest = limits.timeout if limits.timeout is not None else api.transport.read_timeout
    return replace(limits, timeout=min(longest, left))


def start_build(
    api: Api,
    service: ServiceRef,
    body: dict[str, Any],
    say: Callable[[str], None],
    limits: Limits,
) -> Build:
    """The started build: the API's answer, or the build found after an unclear failure.

    `say` tells the user what happened. Raises ApiError when the API refused the request, or
    could not be reached within the limits and no build of this request exists.
    """
    started = api.clock()
    attempt = 0
    unknown_since: float | None = None  # our Unix time of the first attempt whose fate is unknown
    while True:
        began = api.wall()
        try:
            return api.start_build(service, body, limits)
        except ApiError as error:
            failure = error
        if not failure.retryable:
            raise failure
        unclear = not failure.never_sent and failure.status != 429
        if unclear and unknown_since is None:
            unknown_since = began
        # After a timeout the API may still be working on the request: give it a moment.
        settle = min(SETTLE, api.transport.read_timeout) if failure.timed_out else 0.0
        wait = api.retry_wait(failure, attempt, started, limits, settle)
        if wait is not None:
            say(_retry_notice(failure, unclear, wait))
            api.sleep(wait)
        if unknown_since is not None:
            found = _look(api, service, body, unknown_since, limits)
            if found.builds:
                return _adopt(found, body, say)
            if not found.complete:
                raise _cut_short(failure, found)
        if wait is None:
            raise _final_error(failure, unknown_since is not None)
        attempt += 1
        if unknown_since is not None:
            say(
                "No build of this request was found: sending the start request again "
                f"(attempt {attempt + 1} of at most {limits.retry.attempts})"
            )


def _retry_notice(error: ApiError, unclear: bool, wait: float) -> str:
    what = f"The start request failed: {error.api_message} ({error.where})"
    if error.never_sent:
        return f"{what}. It never reached Northflank: trying again in {wait:.1f} s"
    if not unclear:
        return f"{what}. Northflank refused it for now: trying again in {wait:.1f} s"
    return (
        f"{what}. It may have reached Northflank: looking for its build among the "
        f"service's recent builds in {wait:.1f} s before starting another"
    )


def _final_error(error: ApiError, may_have_arrived: bool) -> ApiError:
    """The error to report on giving up; it says so when the request may have arrived."""
    if not may_have_arrived:
        return error
    return ApiError(
        f"{error.api_message}; no build of this request appeared among the service's recent builds",
        status=error.status,
        error_id=error.error_id,
        hint="Check the service's builds on Northflank before starting it again",
    )


def _cut_short(error: ApiError, found: Found) -> ApiError:
    """The error when the search for the build stopped before the pages that could hold it."""
    return ApiError(
        f"{error.api_message}; the request may have reached Northflank, and only the first "
        f"{found.read} of the service's builds were read looking for its build (their order is "
        "not documented), so it is not sent again",
        status=error.status,
        error_id=error.error_id,
        hint="Check the service's builds on Northflank before starting it again",
    )


def _look(
    api: Api, service: ServiceRef, body: dict[str, Any], since: float, limits: Limits
) -> Found:
    """The builds of this request created since the first unclear attempt."""
    try:
        return builds_of_request(api, service, body, since, limits)
    except ApiError as error:
        raise ApiError(
            f"the start request failed, and the service's builds could not be read to see "
            f"whether it reached Northflank: {error.api_message}",
            status=error.status,
            error_id=error.error_id,
            hint="Check the service's builds on Northflank before starting it again",
        ) from None


def _adopt(found: Found, body: dict[str, Any], say: Callable[[str], None]) -> Build:
    """The earliest build found, said to be followed; the others are named and left alone."""
    build = found.builds[0]
    how = "" if "sha" in body else " (the request named no commit: matched by target and time)"
    created = build.data.get("createdAt")
    say(
        f"Found build {build.id} of this request, created at {created} after the start request "
        f"was sent{how}: following it instead of starting another"
    )
    if len(found.builds) > 1:
        others = ", ".join(b.id for b in found.builds[1:])
        say(f"Builds {others} of the same request were created too; they are left alone")
    return build
