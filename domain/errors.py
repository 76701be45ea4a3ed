"""Domain errors: what a command can refuse, in words a caller understands.

The API translates each class to Taskcluster's error code at the boundary;
the docstring is the default message.
"""

from __future__ import annotations


class DomainError(Exception):
    """The request cannot be carried out."""

    def __init__(self, message: str | None = None, **details: object) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        self.details = details
        super().__init__(self.message)


class NotFound(DomainError):
    """The entity does not exist."""


class Conflict(DomainError):
    """The request conflicts with the current state of the entity."""


class InvalidInput(DomainError):
    """The request is well-formed but not acceptable."""


class Expired(DomainError):
    """The entity has expired."""


class ReplayedRequest(DomainError):
    """Authentication failed: nonce already used"""
