"""What the auth service's handlers may use, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from cairn.api.authentication import Authentication
from cairn.api.history import ReadHistory
from cairn.domain.auth.service import AuthService
from cairn.projections.auth.cache import AuthCache
from cairn.projections.auth.views import AuthReadModel


@dataclass(frozen=True)
class AuthContext:
    service: AuthService
    reads: AuthReadModel
    #: Static clients, and scope expansion through the current roles.
    cache: AuthCache
    history: ReadHistory
    authentication: Authentication
