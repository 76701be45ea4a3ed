"""The ``.taskcluster.yml`` engine: webhook interpretation, policies and rendering, with no I/O.

Everything here is pure: the caller fetches what GitHub holds (the file at
the head sha, the file on the default branch, a ``config-from`` file, a pull
request for a comment, the sha of a release) and passes it in. The same
inputs always give the same output when ``id_seed`` is given, so a consumer
restarted mid-build re-renders the very same task ids.

The flow a consumer follows (Taskcluster-GitHub's ``jobHandler``):

1. ``event = interpret(event_name, body)``; ``None`` for an event Cairn does
   not know; ``event.tasks_for is None`` for a known one that builds nothing
   (``event.no_build_reason`` says why: ping, installation, check_suite, a
   deleted ref, a comment with no ``/taskcluster`` command, ...).
   ``check_run`` ``rerequested`` by a user has ``event.rerun`` true: rerun the
   task of that check run (role ``event.role()`` is ``...:rerun``).
2. ``skip_ci(event)``: ``[skip ci]``/``[ci skip]`` in the head commit message
   (push) or the pull request title (pull_request): nothing is done.
3. A release has no sha: resolve ``event.body["release"]["target_commitish"]``
   to a sha and use ``event.with_sha(sha)``. An issue comment has no sha:
   fetch the pull request ``event.pull_request_number`` and use
   ``event.with_pull_request(pr)``.
4. Read ``.taskcluster.yml`` at ``event.sha``; no file: nothing to do.
5. Pull requests and comments: read ``.taskcluster.yml`` on the repository's
   DEFAULT branch (``event.default_branch``, or the repository's
   ``default_branch`` from GitHub) and ``policy = read_policy(that_text,
   fetch_file)`` (``None`` text when the file is missing there). Never the
   policy of the pull request's own file. Then
   ``pull_request_decision(policy, event, trusted)`` with
   ``trusted = pull_request_trusted(event, is_collaborator)`` or
   ``comment_decision(policy, commenter_is_collaborator)``.
6. ``rendered = render(text, event, root_url=..., now=..., fetch_file=...,
   untrusted=decision.untrusted, id_seed=<delivery id>)``; a ``ConfigError``
   is posted as a comment (``error_comment(err)``) and recorded.
7. Create ``rendered.tasks`` in order (dependencies first) with the scopes
   ``rendered.scopes``; report according to ``rendered.reporting``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: The ``schedulerId`` of every task created from GitHub (unless the template sets its own).
SCHEDULER_ID = "taskcluster-github"
#: The route added to every task: statuses without ``reporting``, checks with ``reporting: checks-v1``.
STATUS_ROUTE = "statuses"
CHECK_ROUTE = "checks"

#: ``tasks_for`` values (Taskcluster's ``GITHUB_TASKS_FOR``).
PUSH = "github-push"
PULL_REQUEST = "github-pull-request"
PULL_REQUEST_UNTRUSTED = "github-pull-request-untrusted"
RELEASE = "github-release"
ISSUE_COMMENT = "github-issue-comment"

#: Pull request policies (``policy.pullRequests``) and the comment policy (``policy.allowComments``).
PUBLIC = "public"
PUBLIC_RESTRICTED = "public_restricted"
COLLABORATORS = "collaborators"
COLLABORATORS_QUIET = "collaborators_quiet"

#: The context key under which v1 templates see the trigger variables (``vars.revision``, ...).
VARS_KEY = "vars"


class ConfigError(Exception):
    """A ``.taskcluster.yml`` that cannot be rendered; ``str(err)`` is Markdown fit for a GitHub comment.

    ``kind`` is one of ``yaml``, ``version``, ``schema``, ``json-e``, ``config-from``,
    ``variables`` (trigger format), ``tasks`` (what the rendering produced is not a task list).
    """

    def __init__(self, message: str, kind: str = "schema"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class FetchedFile:
    """What ``fetch_file(owner, repo, path, ref)`` returns: the file's text and the revision (sha) ``ref`` resolved to."""

    text: str
    revision: str


#: fetch_file(owner, repo, path, ref) -> FetchedFile; raises (any exception) when the file or ref is not found.
FetchFile = Callable[[str, str, str, str], FetchedFile]


@dataclass(frozen=True)
class GithubEvent:
    """One webhook delivery, read as Taskcluster-GitHub reads it.

    ``body`` is the delivery as received: what v1 templates see as ``event``.
    ``tasks_for`` is ``None`` when the event builds nothing (see ``no_build_reason``).
    ``sha`` is the head sha to build and report on (``None`` until resolved
    for a release or an issue comment, see ``with_sha``/``with_pull_request``).
    """

    event_name: str
    action: str | None
    body: Mapping[str, Any] = field(repr=False, hash=False, compare=False)
    tasks_for: str | None
    no_build_reason: str | None
    owner: str
    repo: str
    installation_id: int | None
    sha: str | None
    ref: str | None  # refs/heads/NAME, refs/tags/NAME (push; release: refs/tags/TAG)
    branch: str | None  # push: the branch; pull request: the head branch; release: target_commitish
    tag: str | None  # tag push or release
    default_branch: str | None  # the repository's, from the payload when it carries it
    pull_request_number: int | None
    pull_request_title: str | None
    pull_request_url: str | None  # html URL
    user: str | None  # sender.login (Taskcluster's event.head.user.login)
    user_email: str | None  # when the payload has one (push: pusher.email)
    commit_messages: tuple[str, ...]  # push: the commits' messages, head commit last
    #: Pull request people, for the collaborator checks: the opener, the head and base repository owners.
    pr_opener: str | None
    pr_head_owner: str | None
    pr_base_owner: str | None
    #: Issue comments: the ``/taskcluster <command>`` text, the comment id and author.
    comment: str | None
    comment_id: int | None
    commenter: str | None
    #: check_run (rerequested by a user) and check_suite.
    rerun: bool
    check_run_id: int | None
    check_suite_id: int | None
    check_run_name: str | None
    check_run_external_id: str | None
    sender_type: str | None

    def role(self, untrusted: bool = False) -> str:
        """The role tasks are created with, without ``assume:``.

        ``repo:github.com/<owner>/<repo>:`` + ``branch:NAME`` (branch push), ``tag:NAME`` (tag push),
        ``pull-request`` (pull request, issue comment), ``pull-request-untrusted`` (``untrusted`` pull request),
        ``release:ACTION`` (release; ``published`` when the body has no action), ``rerun`` (check_run).
        """
        from cairn.domain.github.tcyml import events

        return events.role(self, untrusted)

    @property
    def variables(self) -> dict[str, Any]:
        """The trigger variables of the proposal defined for this event (``vars`` in v1, ``${name}`` in v2).

        Always: ``repository`` (html URL of the repository holding ``revision``), ``revision``, ``user``,
        ``user_email`` (``<login>@users.noreply.github.com`` when the payload has none).
        Push: ``branch`` (branch push) or ``tag`` (tag push). Pull request and comment: ``branch`` (head),
        ``pr_title``, ``pr_number``, ``pr_url``; a comment adds ``comment``. Release: ``release_name``
        (the tag when the release has no name), ``tag``. ``revision`` is absent while ``sha`` is unknown.
        """
        from cairn.domain.github.tcyml import events

        return events.variables(self)

    def with_sha(self, sha: str) -> GithubEvent:
        """The same event with its head sha resolved (a release's ``target_commitish``)."""
        from cairn.domain.github.tcyml import events

        return events.with_sha(self, sha)

    def with_pull_request(self, pull_request: Mapping[str, Any]) -> GithubEvent:
        """An issue comment completed with its pull request (GitHub's ``GET /pulls/N``), as Taskcluster does:
        ``body.pull_request`` and ``body.taskcluster_comment`` set, sha/branch/title/people from the PR."""
        from cairn.domain.github.tcyml import events

        return events.with_pull_request(self, pull_request)


def interpret(event_name: str, body: Mapping[str, Any]) -> GithubEvent | None:
    """Read a delivery (``X-GitHub-Event`` and the parsed body); ``None`` for an event Cairn does not handle.

    push → ``github-push`` (branches and tags; a deleted ref builds nothing); pull_request (every
    action, as Taskcluster passes them all to the template) → ``github-pull-request``; release →
    ``github-release``; issue_comment created/edited on an open pull request with a ``/taskcluster``
    command → ``github-issue-comment``; ping, installation, installation_repositories, check_suite,
    check_run → ``tasks_for`` None (check_run rerequested by a non-bot sender sets ``rerun``).
    Raises ``ValueError`` for a body that lacks what its event must carry (a malformed delivery).
    """
    from cairn.domain.github.tcyml import events

    return events.interpret(event_name, body)


def skip_ci(event: GithubEvent) -> bool:
    """``[skip ci]`` or ``[ci skip]`` (any case) in the head commit message of a push or a pull request's title."""
    from cairn.domain.github.tcyml import events

    return events.skip_ci(event)


@dataclass(frozen=True)
class Policy:
    """The policies of the DEFAULT branch's ``.taskcluster.yml`` (Taskcluster never reads them from the PR).

    ``pull_requests``: public | public_restricted | collaborators | collaborators_quiet (default
    ``collaborators``; ``collaborators_quiet`` when the default branch has no file at all).
    ``allow_comments``: ``collaborators`` or None (comments start nothing). ``found``: the file exists.
    """

    pull_requests: str = COLLABORATORS
    allow_comments: str | None = None
    found: bool = True


def read_policy(text: str | None, fetch_file: FetchFile | None = None) -> Policy:
    """The policy of the default branch's ``.taskcluster.yml`` text (``None``: no file there).

    A file that cannot be read gives the default policy (``collaborators``). With ``config-from``
    and no ``policy`` of its own, the referenced file's policy applies (fetched with ``fetch_file``;
    without ``fetch_file``, or if it fails, the default).
    """
    from cairn.domain.github.tcyml import policy

    return policy.read_policy(text, fetch_file)


@dataclass(frozen=True)
class Decision:
    """What to do with a pull request or a comment: build (``untrusted`` picks the role), or not, and what to say."""

    build: bool
    untrusted: bool = False
    #: A comment to post (Markdown, already formatted like Taskcluster's), or None to stay quiet.
    comment: str | None = None
    #: Issue comments: the reaction to add to the comment (``+1`` after building, ``confused``, ``eyes``), or None.
    reaction: str | None = None


def pull_request_trusted(event: GithubEvent, is_collaborator: Callable[[str], bool]) -> bool:
    """Taskcluster's rule: the opener is a collaborator, and the head repository's owner is one too or
    is the base repository's owner. ``is_collaborator(login)`` asks GitHub."""
    from cairn.domain.github.tcyml import policy

    return policy.pull_request_trusted(event, is_collaborator)


def pull_request_decision(policy: Policy, event: GithubEvent, trusted: bool) -> Decision:
    """public: build; public_restricted: build, untrusted when not ``trusted``; collaborators(_quiet): build
    only when ``trusted`` — ``collaborators`` comments when it refuses an ``opened`` pull request."""
    from cairn.domain.github.tcyml import policy as policies

    return policies.pull_request_decision(policy, event, trusted)


def comment_decision(policy: Policy, commenter_is_collaborator: bool, commenter: str | None = None) -> Decision:
    """``/taskcluster`` comments: build (trusted role) when ``allowComments: collaborators`` and the commenter is one."""
    from cairn.domain.github.tcyml import policy as policies

    return policies.comment_decision(policy, commenter_is_collaborator, commenter)


def error_comment(error: BaseException | str) -> str:
    """The Markdown comment Taskcluster posts for an error (``<details>`` with "Uh oh! Looks like an error!")."""
    from cairn.domain.github.tcyml import policy

    return policy.error_comment(error)


def comment_body(summary: str, details: str) -> str:
    """Taskcluster's comment layout: a ``<details>`` block with ``summary`` and Markdown ``details``."""
    from cairn.domain.github.tcyml import policy

    return policy.comment_body(summary, details)


@dataclass(frozen=True)
class Rendered:
    """The outcome of rendering: what to create and how to report.

    ``tasks``: (task_id, definition) in creation order (a task after the tasks it depends on);
    every definition has ``taskGroupId``, ``schedulerId``, ``created``, ``routes`` (with
    ``statuses`` or ``checks``) and never ``taskId``. Empty when the file renders no tasks.
    ``task_group_id``: the group of the first task (None without tasks).
    ``scopes``: ``assume:<role>``, ``queue:route:<statuses|checks>``, ``queue:scheduler-id:taskcluster-github``.
    ``hooks``: v1 ``hooks`` entries (``name``, ``context``), passed through unrendered.
    ``config_repo``/``config_revision``: the repository URL and revision of the file rendered
    (the project's, or the ``config-from`` one).
    """

    tasks: list[tuple[str, dict[str, Any]]]
    task_group_id: str | None
    scopes: list[str]
    role: str
    tasks_for: str
    policy: Policy
    reporting: str | None
    auto_cancel_previous_checks: bool
    config_repo: str
    config_revision: str
    version: int
    hooks: list[dict[str, Any]] = field(default_factory=list)
    config_from: str | None = None


def render(
    text: str,
    event: GithubEvent,
    *,
    root_url: str,
    now: datetime,
    fetch_file: FetchFile,
    untrusted: bool = False,
    comment: str | None = None,
    task_group_id: str | None = None,
    id_seed: str | None = None,
) -> Rendered:
    """Render a project's ``.taskcluster.yml`` (read at ``event.sha``) for ``event``.

    ``untrusted`` renders a pull request as ``github-pull-request-untrusted``. ``comment`` is the
    ``/taskcluster`` command (defaults to ``event.comment``). ``task_group_id`` fixes the default
    task group id. ``id_seed`` (e.g. the delivery id) makes every generated id — ``as_slugid``
    labels, default task ids — a function of the seed, so rendering again gives the same ids;
    without it they are random. ``fetch_file`` is called only for ``config-from``.

    v1 (JSON-e) context: ``tasks_for``, ``event``, ``as_slugid``, ``now``, ``taskcluster_root_url``,
    ``taskcluster_comment`` (comments; also ``event.taskcluster_comment``), ``vars`` (the trigger
    variables, ``GithubEvent.variables``), ``taskclusterYmlRepo``, ``taskclusterYmlRevision``, plus
    the project's ``context`` under ``config-from`` (Cairn's keys win, even when absent). The whole
    file less ``version`` and ``hooks`` is rendered, as Taskcluster does; integral floats are made
    ints. v2 is the trigger format (``onPush``, ``onPullRequest``, ``onRelease``,
    ``onCustomTrigger``; ``${name}`` variables) and gives its tasks a deadline a day after ``now``
    when they set none; v1 tasks get no deadline (Taskcluster-GitHub sets none).

    Known difference from Taskcluster-GitHub: JSON-e's Python implementation writes a float that is
    a whole number with ``.0`` inside strings (``"${4/2}"`` is ``"2.0"``, JavaScript's ``"2"``).

    Raises ``ConfigError`` for the file's problems, ``ValueError`` for the caller's (an event that
    builds nothing, or whose sha is not resolved yet).
    """
    from cairn.domain.github.tcyml import rendering

    return rendering.render(
        text, event, root_url=root_url, now=now, fetch_file=fetch_file, untrusted=untrusted,
        comment=comment, task_group_id=task_group_id, id_seed=id_seed,
    )
