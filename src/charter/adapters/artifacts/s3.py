"""Blobs as objects in an S3-compatible store (AWS S3, MinIO, SeaweedFS, Ceph RGW) through boto3.

``s3://BUCKET/PREFIX`` keeps every account under ``PREFIX/<account>/sha256/ab/cd/<digest>`` in one
bucket; a bucket written as a template with ``{account}`` (``s3://charter-{account}/blobs``) gives
each account its own bucket. Buckets are not created here: they are the operator's to provision.

Atomicity. An S3 object becomes visible only when its PutObject, CopyObject or
CompleteMultipartUpload succeeds, and the digest is known only once the stream has ended, so:

- a blob up to the multipart threshold is buffered and hashed, checked against what the caller
  announced, and sent with one PutObject to its final key with ``x-amz-checksum-sha256``: the
  server refuses bytes that arrive damaged;
- a larger blob goes out as a multipart upload (each part with its Content-MD5) to a staging key
  ``PREFIX/.staging/<uuid>``; once the stream ends and its digest checks out, the upload is
  completed and the staging object is copied server-side to the final key (CopyObject, or
  UploadPartCopy above 5 GiB), then deleted. Any failure aborts the multipart upload or deletes the
  staging object, so the final key never holds a partial or unverified blob;
- ``copy`` copies server-side to a staging key in the destination, reads that copy back and hashes
  it, and only when it matches copies it on to the final key; otherwise the staging copy is deleted
  and IntegrityError raised.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from charter.adapters.artifacts import (
    CHUNK_BYTES,
    DEFAULT_MULTIPART_PART_BYTES,
    DEFAULT_MULTIPART_THRESHOLD_BYTES,
    MiB,
    S3Credentials,
)
from charter.domain.artifacts import (
    ALGORITHM,
    SHA256_PATTERN,
    STAGING,
    BlobInfo,
    Digester,
    blob_key,
    check_digest,
    integrity_failure,
    verified,
)
from charter.domain.names import check_name
from charter.errors import NotFound, ServerError, ValidationError

ACCOUNT_FIELD = "{account}"
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
SEGMENT_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
MIN_PART_BYTES = 5 * MiB
MAX_PART_BYTES = 5 * 1024 * MiB
MAX_PARTS = 10_000
MAX_SINGLE_COPY_BYTES = 5 * 1024 * MiB
_ABSENT = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def _invalid_url(url: str, reason: str) -> ValidationError:
    return ValidationError(f"invalid artifact store URL {url!r}: {reason}", field="artifact_store_url",
                           value=url)


def _valid_bucket(name: str) -> bool:
    return bool(BUCKET_PATTERN.fullmatch(name)) and ".." not in name


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket template, key prefix)`` of ``s3://BUCKET[/PREFIX]``; ValidationError otherwise."""
    if not url.startswith("s3://"):
        raise _invalid_url(url, "expected s3://BUCKET/PREFIX")
    rest = url[len("s3://"):]
    if any(c in rest for c in "?#\\\0 ") or "%" in rest:
        raise _invalid_url(url, "no query, fragment, escape, backslash or space allowed")
    bucket, _, prefix = rest.partition("/")
    if bucket.count(ACCOUNT_FIELD) > 1 or not _valid_bucket(bucket.replace(ACCOUNT_FIELD, "acct")):
        raise _invalid_url(url, f"bad bucket name {bucket!r} (3-63 of a-z, 0-9, '.', '-'; "
                                f"{ACCOUNT_FIELD} stands for the account)")
    segments = [s for s in prefix.strip("/").split("/") if s]
    if "//" in prefix.strip("/") or not all(SEGMENT_PATTERN.fullmatch(s) for s in segments):
        raise _invalid_url(url, f"bad key prefix {prefix!r} (segments of letters, digits, '.', "
                                "'_', '-', not starting with '.')")
    return bucket, "/".join(segments)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _failure(what: str, error: Exception) -> ServerError:
    if isinstance(error, ClientError):
        return ServerError(f"the artifact store refused to {what}: {_code(error)}",
                           operation=what, code=_code(error))
    return ServerError(f"the artifact store could not {what}: {type(error).__name__}", operation=what)


class _Upload:
    """One multipart upload: parts in order, then completed, or else aborted."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self._s3, self.bucket, self.key = s3, bucket, key
        self.parts: list[dict[str, Any]] = []
        self.completed = False
        try:
            self.upload_id = str(s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])
        except (BotoCoreError, ClientError) as error:
            raise _failure("start a multipart upload", error) from error

    def add(self, data: bytes) -> None:
        number = len(self.parts) + 1
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            answer = self._s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                          PartNumber=number, Body=data, ContentMD5=md5)
        except (BotoCoreError, ClientError) as error:
            raise _failure("store a part", error) from error
        self.parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def add_copy(self, source: dict[str, str], start: int, end: int) -> None:
        number = len(self.parts) + 1
        try:
            answer = self._s3.upload_part_copy(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                               PartNumber=number, CopySource=source,
                                               CopySourceRange=f"bytes={start}-{end}")
        except (BotoCoreError, ClientError) as error:
            raise _failure("copy a part", error) from error
        self.parts.append({"ETag": answer["CopyPartResult"]["ETag"], "PartNumber": number})

    def complete(self) -> None:
        try:
            self._s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                               MultipartUpload={"Parts": self.parts})
        except (BotoCoreError, ClientError) as error:
            raise _failure("complete a multipart upload", error) from error
        self.completed = True

    def abort(self) -> None:
        """Best effort: the error that led here matters more than a failure to clean up."""
        if self.completed:
            return
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except (BotoCoreError, ClientError):
            pass


class S3ArtifactStore:
    """An ``ArtifactStore`` on an S3-compatible object store."""

    local = False

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        credentials: S3Credentials | None = None,
        region: str | None = None,
        multipart_threshold_bytes: int = DEFAULT_MULTIPART_THRESHOLD_BYTES,
        multipart_part_bytes: int = DEFAULT_MULTIPART_PART_BYTES,
        max_single_copy_bytes: int = MAX_SINGLE_COPY_BYTES,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self._bucket_template, self._prefix = parse_s3_url(url)
        if not MIN_PART_BYTES <= multipart_part_bytes <= MAX_PART_BYTES:
            raise ValidationError(f"the multipart part size must be between {MIN_PART_BYTES} and "
                                  f"{MAX_PART_BYTES} bytes", field="s3_multipart_part_bytes")
        if multipart_threshold_bytes < 0:
            raise ValidationError("the multipart threshold cannot be negative",
                                  field="s3_multipart_threshold_bytes")
        if not MIN_PART_BYTES <= max_single_copy_bytes <= MAX_SINGLE_COPY_BYTES:
            raise ValidationError(f"the largest single copy must be between {MIN_PART_BYTES} and "
                                  f"{MAX_SINGLE_COPY_BYTES} bytes", field="max_single_copy_bytes")
        self._threshold = multipart_threshold_bytes
        self._part_bytes = multipart_part_bytes
        self._max_single_copy = max_single_copy_bytes
        self._chunk_bytes = chunk_bytes
        session = boto3.session.Session(
            aws_access_key_id=credentials.access_key_id if credentials else None,
            aws_secret_access_key=credentials.secret_access_key if credentials else None,
            aws_session_token=credentials.session_token if credentials else None,
            region_name=region,
        )
        config = Config(
            s3={"addressing_style": "path"} if endpoint_url else {},
            retries={"mode": "standard", "max_attempts": 5},
            # Checksums are sent explicitly (SHA-256, Content-MD5); the default CRC trailers are
            # not understood by every S3-compatible server.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._s3: Any = session.client("s3", endpoint_url=endpoint_url, config=config)

    # -- the port -------------------------------------------------------------------------------

    def put(
        self,
        account: str,
        chunks: Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> BlobInfo:
        bucket = self._bucket(account)
        if expected_sha256 is not None:
            check_digest(expected_sha256, "expected_sha256")
        digester = Digester(max_bytes)
        buffer = bytearray()
        upload: _Upload | None = None
        try:
            for chunk in chunks:
                digester.update(chunk)
                buffer += chunk
                if upload is None and len(buffer) > self._threshold:
                    upload = _Upload(self._s3, bucket, self._staging_key())
                while upload is not None and len(buffer) >= self._part_bytes:
                    upload.add(bytes(memoryview(buffer)[: self._part_bytes]))
                    del buffer[: self._part_bytes]
            info = digester.result(account, expected_sha256)
            final = self._key(account, info.sha256)
            if upload is None:
                self._put_whole(bucket, final, bytes(buffer), info.sha256)
                return info
            if buffer or not upload.parts:
                upload.add(bytes(buffer))
            buffer.clear()
            upload.complete()
            if self._size(bucket, final) != info.size:
                self._server_copy(bucket, upload.key, bucket, final, info.size)
            return info
        finally:
            if upload is not None:
                upload.abort()
                if upload.completed:
                    self._delete_quietly(bucket, upload.key)

    def open(self, account: str, sha256: str) -> Iterator[bytes]:
        bucket, key = self._bucket(account), self._key(account, sha256)
        try:
            answer = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _code(error) in _ABSENT:
                raise self._not_found(account, sha256) from None
            raise _failure("read a blob", error) from error
        except BotoCoreError as error:
            raise _failure("read a blob", error) from error
        size = int(answer["ContentLength"])
        return verified(self._body(answer["Body"]), BlobInfo(account, sha256, size))

    def stat(self, account: str, sha256: str) -> BlobInfo | None:
        size = self._size(self._bucket(account), self._key(account, sha256))
        return None if size is None else BlobInfo(account, sha256, size)

    def digests(self, account: str) -> Iterator[str]:
        bucket = self._bucket(account)
        top = f"{check_name(account, 'account')}/{ALGORITHM}/"
        prefix = f"{self._prefix}/{top}" if self._prefix else top
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    name = str(item["Key"]).rsplit("/", 1)[-1]
                    if SHA256_PATTERN.fullmatch(name) and item["Key"] == self._key(account, name):
                        yield name
        except ClientError as error:
            if _code(error) == "NoSuchBucket":
                return
            raise _failure("list blobs", error) from error
        except BotoCoreError as error:
            raise _failure("list blobs", error) from error

    def copy(self, src_account: str, dst_account: str, sha256: str) -> BlobInfo:
        src_bucket, src_key = self._bucket(src_account), self._key(src_account, sha256)
        dst_bucket, final = self._bucket(dst_account), self._key(dst_account, sha256)
        size = self._size(src_bucket, src_key)
        if size is None:
            raise self._not_found(src_account, sha256)
        if src_account == dst_account:
            return BlobInfo(src_account, sha256, size)
        staging = self._staging_key()
        try:
            self._server_copy(src_bucket, src_key, dst_bucket, staging, size)
            digester = Digester()
            for chunk in self._read(dst_bucket, staging):
                digester.update(chunk)
            if digester.hexdigest() != sha256:
                raise integrity_failure(BlobInfo(src_account, sha256, size), digester.hexdigest(),
                                        digester.size, f"on copy to account {dst_account}")
            self._server_copy(dst_bucket, staging, dst_bucket, final, digester.size)
        finally:
            self._delete_quietly(dst_bucket, staging)
        return BlobInfo(dst_account, sha256, digester.size)

    # -- keys -----------------------------------------------------------------------------------

    def _bucket(self, account: str) -> str:
        check_name(account, "account")
        bucket = self._bucket_template.replace(ACCOUNT_FIELD, account)
        if not _valid_bucket(bucket):
            raise ValidationError(f"account {account!r} yields the invalid bucket name {bucket!r}",
                                  account=account, bucket=bucket)
        return bucket

    def _key(self, account: str, sha256: str) -> str:
        key = blob_key(account, sha256)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _staging_key(self) -> str:
        key = f"{STAGING}/{uuid.uuid4().hex}"
        return f"{self._prefix}/{key}" if self._prefix else key

    # -- S3 calls -------------------------------------------------------------------------------

    def _size(self, bucket: str, key: str) -> int | None:
        try:
            answer = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _code(error) in _ABSENT:
                return None
            raise _failure("look up a blob", error) from error
        except BotoCoreError as error:
            raise _failure("look up a blob", error) from error
        return int(answer["ContentLength"])

    def _put_whole(self, bucket: str, key: str, data: bytes, sha256: str) -> None:
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumSHA256=checksum)
        except (BotoCoreError, ClientError) as error:
            raise _failure("store a blob", error) from error

    def _server_copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, size: int) -> None:
        """Copy inside the store, atomically: the destination appears only once complete."""
        source = {"Bucket": src_bucket, "Key": src_key}
        if size <= self._max_single_copy:
            try:
                self._s3.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource=source)
            except (BotoCoreError, ClientError) as error:
                raise _failure("copy a blob", error) from error
            return
        part = min(max(self._part_bytes, math.ceil(size / MAX_PARTS)), MAX_PART_BYTES)
        upload = _Upload(self._s3, dst_bucket, dst_key)
        try:
            for start in range(0, size, part):
                upload.add_copy(source, start, min(start + part, size) - 1)
            upload.complete()
        finally:
            upload.abort()

    def _read(self, bucket: str, key: str) -> Iterator[bytes]:
        try:
            answer = self._s3.get_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError) as error:
            raise _failure("read a blob", error) from error
        return self._body(answer["Body"])

    def _body(self, body: Any) -> Iterator[bytes]:
        try:
            for chunk in body.iter_chunks(self._chunk_bytes):
                yield bytes(chunk)
        except BotoCoreError as error:
            raise _failure("read a blob", error) from error
        finally:
            body.close()

    def _delete_quietly(self, bucket: str, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError):
            pass

    @staticmethod
    def _not_found(account: str, sha256: str) -> NotFound:
        return NotFound(f"account {account} holds no blob {sha256}", account=account, sha256=sha256)
