"""The artifact store named by a URL: ``file:///PATH`` or ``s3://BUCKET[/PREFIX]``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from charter.adapters.artifacts import (
    DEFAULT_MULTIPART_PART_BYTES,
    DEFAULT_MULTIPART_THRESHOLD_BYTES,
    S3Credentials,
)
from charter.adapters.artifacts.file import FileArtifactStore
from charter.errors import ValidationError
from charter.services.ports import ArtifactStore


def _invalid(url: str, reason: str) -> ValidationError:
    return ValidationError(f"invalid artifact store URL {url!r}: {reason}", field="artifact_store_url",
                           value=url)


def file_root(url: str) -> Path:
    """The directory of a ``file:`` URL: absolute, local, percent-decoded."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise _invalid(url, "expected file:///ABSOLUTE/PATH")
    path = unquote(parts.path)
    if not path.startswith("/") or "\0" in path:
        raise _invalid(url, "expected file:///ABSOLUTE/PATH")
    return Path(path)


def artifact_store_from_url(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_credentials: S3Credentials | None = None,
    s3_multipart_threshold_bytes: int = DEFAULT_MULTIPART_THRESHOLD_BYTES,
    s3_multipart_part_bytes: int = DEFAULT_MULTIPART_PART_BYTES,
) -> ArtifactStore:
    """The store for ``url``; without ``s3_credentials`` boto3's standard credential chain applies."""
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme == "file":
        return FileArtifactStore(file_root(url))
    if scheme == "s3":
        try:
            from charter.adapters.artifacts.s3 import S3ArtifactStore
        except ImportError as missing:
            raise _invalid(url, "s3:// needs boto3: pip install 'charter[s3]'") from missing
        return S3ArtifactStore(
            url,
            endpoint_url=s3_endpoint_url,
            credentials=s3_credentials,
            multipart_threshold_bytes=s3_multipart_threshold_bytes,
            multipart_part_bytes=s3_multipart_part_bytes,
        )
    raise _invalid(url, "use file:///PATH or s3://BUCKET/PREFIX")
