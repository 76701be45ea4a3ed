"""The trigger format (``version: 2``): plain task lists per trigger, ``${name}`` variables, no JSON-e.

From the "new Taskcluster YML format" proposal: ``onPush`` (pushes to the
primary branch), ``onPullRequest`` (pull requests opened, synchronized or
reopened, and ``/taskcluster`` comments), ``onRelease`` (published releases)
and ``onCustomTrigger`` (never run by GitHub). Every variable use in the
three GitHub triggers is checked on every rendering, whatever the event, so a
mistake in ``onRelease`` is reported by the next push rather than by the
next release.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from cairn.domain.github import tcyml
from cairn.domain.github.tcyml import ConfigError

VARIABLE = re.compile(r"\$(\$?)\{([^}]*)\}")
IDENTIFIER = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
COMMON = ("repository", "revision", "user", "user_email")
TRIGGERS: dict[str, tuple[str, ...]] = {
    "onPush": (*COMMON, "branch"),
    "onPullRequest": (*COMMON, "branch", "pr_title", "pr_number", "pr_url", "comment"),
    "onRelease": (*COMMON, "release_name", "tag"),
}
PULL_REQUEST_ACTIONS = ("opened", "synchronize", "reopened")
RELEASE_ACTIONS = ("published",)
MAX_PROBLEMS = 10


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


def _context_names(context: Mapping[str, Any]) -> set[str]:
    return set(context)


def check(config: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """Every ``${name}`` in the GitHub triggers names a variable that trigger defines."""
    problems = []
    extra = _context_names(context)
    for trigger, names in TRIGGERS.items():
        for where, text in _strings(config.get(trigger, []), trigger):
            for escaped, name in VARIABLE.findall(text):
                if escaped:
                    continue
                if not IDENTIFIER.fullmatch(name):
                    problems.append(f"- `{where}`: `${{{name}}}` is not a variable name")
                elif name in names or name in extra:
                    continue
                elif others := [t for t, defined in TRIGGERS.items() if name in defined]:
                    problems.append(
                        f"- `{where}`: `${{{name}}}` is only defined in {' and '.join(f'`{t}`' for t in others)}, "
                        f"not in `{trigger}` (its variables: {', '.join(names)})"
                    )
                else:
                    problems.append(
                        f"- `{where}`: unknown variable `${{{name}}}` (`{trigger}` defines {', '.join(names)})"
                    )
    if problems:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"- ... and {len(problems) - MAX_PROBLEMS} more")
        raise ConfigError("`.taskcluster.yml` (version 2) uses variables it cannot:\n\n" + "\n".join(shown),
                          "variables")


def trigger_for(config: Mapping[str, Any], event: tcyml.GithubEvent) -> str | None:
    """The trigger ``event`` runs, or None."""
    if event.event_name == "push":
        primary = config.get("primaryBranch") or event.default_branch
        return "onPush" if event.branch is not None and event.branch == primary else None
    if event.event_name == "pull_request":
        return "onPullRequest" if event.action in PULL_REQUEST_ACTIONS else None
    if event.event_name == "issue_comment":
        return "onPullRequest"
    if event.event_name == "release":
        return "onRelease" if (event.action or "published") in RELEASE_ACTIONS else None
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value)


def _substitute(value: Any, variables: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        def replace(found: re.Match[str]) -> str:
            if found.group(1):
                return "${" + found.group(2) + "}"
            item = variables.get(found.group(2))
            if isinstance(item, (Mapping, list)):
                raise ConfigError(f"`{where}`: `${{{found.group(2)}}}` is a {type(item).__name__} from `context`; "
                                  "only strings, numbers and booleans can be substituted.", "variables")
            return "" if item is None else _text(item)

        return VARIABLE.sub(replace, value)
    if isinstance(value, Mapping):
        return {key: _substitute(item, variables, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, variables, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def render(config: Mapping[str, Any], event: tcyml.GithubEvent, context: Mapping[str, Any]) -> list[Any]:
    """The task definitions ``event`` runs, variables substituted (``context``: RFC 182's, below the trigger's)."""
    check(config, context)
    trigger = trigger_for(config, event)
    if trigger is None:
        return []
    defined = {name: value for name, value in event.variables.items() if name in TRIGGERS[trigger]}
    if trigger == "onPullRequest":
        defined.setdefault("comment", "")
    variables = {**context, **defined}
    return _substitute(list(config.get(trigger, [])), variables, trigger)
