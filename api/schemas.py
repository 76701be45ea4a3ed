"""The JSON Schemas in ``schemas/``: loaded once, cross-referenced, served and enforced.

Each file declares ``$id: /schemas/<service>/v1/<name>.json#``; references
between files are resolved against that id, exactly as a client resolving
the served documents would.

Every request body is checked first by jsonschema-rs, much the faster of
the two (``bench/README.md``); only a small body it refuses goes through
Python's jsonschema, which gives the verdict and the message, and stops
looking after a few problems. Both use the format checks in
``cairn.api.formats``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any
from urllib.parse import urljoin

import jsonschema_rs
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from cairn.api.echo_limits import shortened
from cairn.api.formats import checker

# jsonschema-rs wants absolute URIs; the schemas' own ids are paths.
_FAST_BASE = "cairn:"
#: Bodies up to this size (bytes) that fail validation are explained by Python's jsonschema.
SMALL_BODY = 16 * 1024
#: The problems with a small body that are looked for before picking the five to tell.
EXPLAINED_PROBLEMS = 50


def _files(root: Traversable) -> Iterator[Traversable]:
    for entry in root.iterdir():
        if entry.is_dir():
            yield from _files(entry)
        elif entry.name.endswith(".yml"):
            yield entry


def schema_id(service: str, name: str) -> str:
    return f"/schemas/{service}/v1/{name}.json"


class SchemaSet:
    def __init__(self, documents: dict[str, dict[str, Any]]):
        self.documents = documents
        self.registry: Registry = Registry().with_resources(
            (uri, Resource.from_contents(doc, default_specification=DRAFT7))
            for uri, doc in documents.items()
        )
        self._validators: dict[str, Draft7Validator] = {}
        self._format_checker = checker
        self._fast_registry = jsonschema_rs.Registry([(_FAST_BASE + uri, doc) for uri, doc in documents.items()])
        self._fast: dict[str, Any] = {}

    def validator(self, uri: str) -> Draft7Validator:
        found = self._validators.get(uri)
        if found is None:
            if uri not in self.documents:
                raise KeyError(f"no schema {uri}")
            found = Draft7Validator(
                self.documents[uri], registry=self.registry, format_checker=self._format_checker
            )
            self._validators[uri] = found
        return found

    def fast_validator(self, uri: str) -> Any:
        found = self._fast.get(uri)
        if found is None:
            if uri not in self.documents:
                raise KeyError(f"no schema {uri}")
            found = jsonschema_rs.Draft7Validator(
                self.documents[uri],
                registry=self._fast_registry,
                base_uri=_FAST_BASE + uri,
                formats=_fast_formats(),
                validate_formats=True,
            )
            self._fast[uri] = found
        return found

    def errors(self, uri: str, instance: Any, size: int = 0) -> str | None:
        """None if valid, else a readable account of what is wrong.

        A refused body of up to ``SMALL_BODY`` bytes (``size``, as read) is
        explained by Python's jsonschema, its first few problems, deepest
        first; a larger one by jsonschema-rs, its first problem only, so that
        explaining costs no more than the check itself.
        """
        fast = self.fast_validator(uri)
        if fast.is_valid(instance):
            return None
        if size > SMALL_BODY:
            try:
                fast.validate(instance)
            except jsonschema_rs.ValidationError as e:
                where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in e.instance_path)
                return f"data{shortened(where)}: {shortened(e.message)}"
            return None
        problems = list(itertools.islice(self.validator(uri).iter_errors(instance), EXPLAINED_PROBLEMS))
        if not problems:
            return None
        return "\n".join(_describe(e) for e in sorted(problems, key=_depth)[:5])


@functools.cache
def _fast_formats() -> dict[str, Any]:
    """The same format checks, as the plain predicates jsonschema-rs calls."""

    def predicate(name: str) -> Any:
        def conforms(value: object) -> bool:
            return checker.conforms(value, name)

        return conforms

    return {name: predicate(name) for name in checker.checkers}


def _depth(error: ValidationError) -> int:
    return -len(error.absolute_path)


def _describe(error: ValidationError) -> str:
    error = best_match([error]) or error
    where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"data{shortened(where)}: {shortened(error.message)}"


@functools.cache
def load_schemas() -> SchemaSet:
    documents: dict[str, dict[str, Any]] = {}
    root = resources.files("cairn.schemas")
    for entry in _files(root):
        doc = yaml.safe_load(entry.read_text())
        uri = doc["$id"].rstrip("#")
        documents[uri] = doc
    return SchemaSet(documents)


def resolve(base: str, ref: str) -> str:
    return urljoin(base, ref).rstrip("#")
