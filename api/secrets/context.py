"""What the secrets handlers see of a running Cairn: one small, typed context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cairn.domain.secrets.service import SecretsService
from cairn.projections.secrets.views import SecretReads


@dataclass(frozen=True)
class SecretsContext:
    secrets: SecretsService
    reads: SecretReads


def secrets_context(runtime: Any) -> SecretsContext:
    """The context, from the runtime's hooks-and-secrets part (``cairn/runtime_hooks.py``)."""
    part = runtime.hooks_and_secrets
    return SecretsContext(secrets=part.secrets, reads=part.secret_reads)
