"""What the object service's handlers (and its data routes) may use, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from cairn.api.signed_urls import DataLinks
from cairn.domain.objects.service import ObjectService
from cairn.projections.objects.blob_store import FileBlobStore
from cairn.projections.objects.storage_reads import StorageReadModel


@dataclass(frozen=True)
class ObjectsContext:
    service: ObjectService
    storage: StorageReadModel
    links: DataLinks
    blobs: FileBlobStore
