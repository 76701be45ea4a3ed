"""Taskcluster-style pagination: ``limit`` and an opaque ``continuationToken``."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from cairn.api.errors import InvalidRequestArguments

T = TypeVar("T")
DEFAULT_LIMIT = 1000
MAX_LIMIT = 1000
_DIGITS = re.compile(r"[0-9]+")


class _Page:
    def bounds(self, call: Any, default: int = DEFAULT_LIMIT) -> tuple[int, str]:
        """(limit, the key after which to continue) from the query."""
        raw = call.query.get("limit")
        try:
            limit = int(raw) if raw is not None else default
        except ValueError:
            raise InvalidRequestArguments("limit must be a positive integer") from None
        if limit < 1:
            raise InvalidRequestArguments("limit must be a positive integer")
        token = call.query.get("continuationToken")
        return min(limit, MAX_LIMIT), self.after(token) if token else ""

    @staticmethod
    def token(last_key: str) -> str:
        return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")

    @staticmethod
    def after(token: str) -> str:
        try:
            key = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequestArguments("continuationToken is not valid") from None
        if "\x00" in key:  # no key holds NUL, and PostgreSQL cannot even compare with one
            raise InvalidRequestArguments("continuationToken is not valid")
        return key

    def cut(self, rows: list[T], limit: int, key: Callable[[T], str]) -> tuple[list[T], dict[str, str]]:
        """The first ``limit`` of ``rows`` (fetched with one extra), and a continuation token if there were more."""
        if len(rows) <= limit:
            return rows, {}
        rows = rows[:limit]
        return rows, {"continuationToken": self.token(key(rows[-1]))}

    @staticmethod
    def pair(after: str, separator: str) -> tuple[str, str]:
        """A continuation key made of two parts, split at ``separator``; ("", "") for none."""
        if not after:
            return "", ""
        first, found, second = after.partition(separator)
        if not found:
            raise InvalidRequestArguments("continuationToken is not valid")
        return first, second

    def position(self, call: Any) -> tuple[int, int]:
        """(limit, the log position or version after which to continue) from the query."""
        limit, after = self.bounds(call)
        if after and not _DIGITS.fullmatch(after):
            raise InvalidRequestArguments("continuationToken is not valid")
        return limit, int(after or 0)

    def __call__(
        self, call: Any, items: Sequence[T], key: Callable[[T], str]
    ) -> tuple[list[T], dict[str, str]]:
        """One page of an in-memory, key-ordered sequence."""
        limit, after = self.bounds(call)
        remaining = [i for i in items if key(i) > after] if after else list(items)
        chunk = remaining[:limit]
        token = {"continuationToken": self.token(key(chunk[-1]))} if len(remaining) > limit else {}
        return chunk, token


page = _Page()
