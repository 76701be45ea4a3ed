"""What the secrets handlers see of a running Cairn: one small, typed context."""

from __future__ import annotations

from dataclasses import dataclass

from cairn.domain.secrets.service import SecretsService
from cairn.projections.secrets.views import SecretReads


@dataclass(frozen=True)
class SecretsContext:
    secrets: SecretsService
    reads: SecretReads
