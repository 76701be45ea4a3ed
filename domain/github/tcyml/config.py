"""Reading a ``.taskcluster.yml``: YAML, version, schema and RFC 182's ``config-from`` reference.

Every refusal is a :class:`ConfigError` whose text is Markdown fit for a
GitHub comment: it names the file, the problem and where it is.
"""

from __future__ import annotations

import datetime
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from cairn.domain.github.tcyml import ConfigError

SCHEMAS = {
    1: "/schemas/github/v1/taskcluster-github-config.v1.json",
    2: "/schemas/github/v1/taskcluster-github-config.v2.json",
}
REFERENCE = re.compile(r"github\.com/(?P<owner>[^/@]+)/(?P<repo>[^/@]+)/(?P<path>[^@]+)@(?P<ref>[^@]+)")
MAX_PROBLEMS = 5
#: The most values (of any kind, at any depth) a file may hold once its YAML aliases are expanded.
MAX_VALUES = 200_000


@dataclass(frozen=True)
class Reference:
    """A ``config-from`` value, ``github.com/<owner>/<repo>/<path>@<ref>``."""

    owner: str
    repo: str
    path: str
    ref: str

    @property
    def repo_url(self) -> str:
        return f"https://github.com/{self.owner}/{self.repo}"

    def __str__(self) -> str:
        return f"github.com/{self.owner}/{self.repo}/{self.path}@{self.ref}"


def parse_reference(value: str) -> Reference:
    found = REFERENCE.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None:
        raise ConfigError(
            f"`config-from: {value}` is not a reference of the form `github.com/<owner>/<repo>/<path>@<ref>` "
            "(for example `github.com/my-org/ci-config/taskcluster/decision.yml@main`).",
            "config-from",
        )
    path = found["path"].strip("/")
    if not path or any(part in ("", ".", "..") for part in path.split("/")):
        raise ConfigError(f"`config-from: {value}` names no usable file path.", "config-from")
    return Reference(found["owner"], found["repo"], path, found["ref"])


@functools.cache
def _validators() -> dict[int, Draft7Validator]:
    documents = {}
    for entry in resources.files("cairn.schemas.github.v1").iterdir():
        if entry.name.endswith(".yml"):
            doc = yaml.safe_load(entry.read_text())
            documents[doc["$id"].rstrip("#")] = doc
    registry = Registry().with_resources(
        (uri, Resource.from_contents(doc, default_specification=DRAFT7)) for uri, doc in documents.items()
    )
    return {version: Draft7Validator(documents[uri], registry=registry) for version, uri in SCHEMAS.items()}


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as JSON-minded tools read it: a date stays the text written (JSON has no dates)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _as_json(value: Any, name: str, where: str, budget: list[int]) -> Any:
    """``value`` as JSON: keys made text (as JavaScript does); what JSON cannot hold is refused.

    YAML aliases share a node; expanded here, a few lines can grow without
    bound ("billion laughs"), so the number of values is limited.
    """
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"`{name}` expands to more than {MAX_VALUES} values (through YAML aliases?).", "yaml")
    if isinstance(value, dict):
        return {str(key): _as_json(item, name, f"{where}.{key}", budget) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item, name, f"{where}[{i}]", budget) for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"`{name}`: `{where.lstrip('.')}` is {value}, which JSON cannot hold.", "yaml")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise ConfigError(f"`{name}`: `{where.lstrip('.')}` is a YAML {type(value).__name__}, which JSON cannot "
                      "hold; only mappings, lists, strings, numbers, booleans and null are allowed.", "yaml")


def parse_yaml(text: str, name: str) -> Any:
    try:
        loaded = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
        return _as_json(loaded, name, "", [MAX_VALUES])
    except yaml.YAMLError as e:
        raise ConfigError(f"`{name}` is not valid YAML:\n\n```\n{e}\n```", "yaml") from e
    except RecursionError as e:
        raise ConfigError(f"`{name}` is nested too deeply to be read.", "yaml") from e


def _where(error: ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top level)"


def _message(error: ValidationError) -> str:
    if error.validator == "additionalProperties" and not error.absolute_path:
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        extra = [key for key in extra if not key.startswith("x-")]
        return f"unknown top-level key(s) {', '.join(f'`{key}`' for key in extra)}"
    if error.validator == "not":
        return error.schema.get("description") or error.message
    if "propertyNames" in error.schema_path:
        return (f"the key {error.instance!r} is not an identifier (context keys must be identifiers: "
                "letters, digits and `_`, not starting with a digit, as JSON-e requires)")
    return error.message


def validate(config: Any, name: str) -> int:
    """The version of a parsed file, once it has the shape its version's schema asks."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"`{name}` must be a YAML mapping with a `version` key.", "schema")
    version = config.get("version")
    if version == 0:
        raise ConfigError(
            f"`{name}` has `version: 0`, which is no longer supported; use `version: 1` "
            "(JSON-e templates) or `version: 2` (the trigger format).",
            "version",
        )
    if version not in SCHEMAS or isinstance(version, bool):
        raise ConfigError(
            f"`{name}` has `version: {version!r}`; the supported versions are 1 (JSON-e templates) "
            "and 2 (the trigger format).",
            "version",
        )
    errors = sorted(_validators()[version].iter_errors(config), key=lambda e: (list(map(str, e.path)), e.message))
    if errors:
        lines = [f"- `{_where(e)}`: {_message(e)}" for e in errors[:MAX_PROBLEMS]]
        if len(errors) > MAX_PROBLEMS:
            lines.append(f"- ... and {len(errors) - MAX_PROBLEMS} more")
        raise ConfigError(
            f"`{name}` does not match the schema of `.taskcluster.yml` version {version}:\n\n" + "\n".join(lines),
            "schema",
        )
    return version


def check_project(config: Mapping[str, Any], name: str) -> None:
    """RFC 182's rules for a project file."""
    if "config-from" in config:
        clash = [key for key in ("tasks", "hooks", "onPush", "onPullRequest", "onRelease", "onCustomTrigger",
                                 "primaryBranch") if key in config]
        if clash:
            raise ConfigError(
                f"`{name}` has both `config-from` and {', '.join(f'`{k}`' for k in clash)}: a file with "
                "`config-from` takes its tasks from the referenced file only.",
                "config-from",
            )
    elif "context" in config:
        raise ConfigError(f"`{name}` has `context` without `config-from`; `context` is only for "
                          "the file `config-from` refers to.", "config-from")


def check_referenced(config: Mapping[str, Any], name: str) -> None:
    found = [key for key in ("config-from", "context") if key in config]
    if found:
        raise ConfigError(
            f"`{name}` (referenced by `config-from`) has {' and '.join(f'`{k}`' for k in found)}: "
            "a referenced file cannot refer further or add context (no recursion).",
            "config-from",
        )
