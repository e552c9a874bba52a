"""Artifact stores: content-addressed blobs per account, on a local filesystem or on S3.

``factory.artifact_store_from_url`` picks the backend from a URL; ``s3`` needs the ``s3`` extra
(boto3) and is imported only when an ``s3://`` URL asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHUNK_BYTES = 1024 * 1024
"""Size of the chunks the stores read and yield."""

MiB = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD_BYTES = 32 * MiB
DEFAULT_MULTIPART_PART_BYTES = 32 * MiB


@dataclass(frozen=True, slots=True)
class S3Credentials:
    """An access key for an S3 endpoint; without one, boto3's standard chain applies."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
