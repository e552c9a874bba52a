"""Content-addressed blobs: their identity, their storage key, and the checks made while streaming.

A blob is named by the SHA-256 of its bytes inside one account. The server derives every storage
key from those two validated values (``<account>/sha256/<2 hex>/<2 hex>/<digest>``); no caller
ever passes a path, so nothing a caller sends can reach outside the account's part of the store.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from charter.domain.names import check_name
from charter.errors import IntegrityError, TooLarge, ValidationError

SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
ALGORITHM = "sha256"
STAGING = ".staging"
"""The one non-blob segment a store uses beside the accounts; no account name starts with a dot."""


def check_digest(value: str, what: str = "sha256") -> str:
    """``value`` when it is a SHA-256 digest in 64 lowercase hex digits; ValidationError otherwise."""
    if not isinstance(value, str) or not SHA256_PATTERN.fullmatch(value):
        raise ValidationError(
            f"invalid {what} digest {value!r}: expected 64 lowercase hexadecimal digits",
            field=what,
            value=str(value)[:100],
        )
    return value


def blob_key(account: str, sha256: str) -> str:
    """The storage key of a blob, relative to the root of a store: derived, never given."""
    check_name(account, "account")
    check_digest(sha256)
    return f"{account}/{ALGORITHM}/{sha256[:2]}/{sha256[2:4]}/{sha256}"


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A blob as named by whoever refers to it: an account and a digest, both validated."""

    account: str
    sha256: str

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_digest(self.sha256)

    @property
    def key(self) -> str:
        return blob_key(self.account, self.sha256)


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob: where it lives, what it hashes to, how many bytes it holds."""

    account: str
    sha256: str
    size: int

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_digest(self.sha256)
        if not isinstance(self.size, int) or self.size < 0:
            raise ValidationError(f"invalid blob size {self.size!r}", field="size")

    @property
    def ref(self) -> BlobRef:
        return BlobRef(self.account, self.sha256)

    @property
    def key(self) -> str:
        return blob_key(self.account, self.sha256)


class Digester:
    """Hashes and counts a stream as it passes; refuses it as soon as it exceeds ``max_bytes``."""

    def __init__(self, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValidationError(f"invalid size limit {max_bytes!r}", field="max_bytes")
        self._hash = hashlib.sha256()
        self._max = max_bytes
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.count(chunk)
        self.absorb(chunk)

    def count(self, chunk: bytes) -> None:
        """Count ``chunk`` against the limit (TooLarge past it) without hashing it yet."""
        self.size += len(chunk)
        if self._max is not None and self.size > self._max:
            raise TooLarge(f"the blob exceeds the limit of {self._max} bytes", max_bytes=self._max)

    def absorb(self, chunk: bytes) -> None:
        """Hash ``chunk``: chunks counted must be absorbed in the same order, once each."""
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def result(self, account: str, expected_sha256: str | None = None) -> BlobInfo:
        """What was streamed; ValidationError when it is not what the caller announced."""
        actual = self.hexdigest()
        if expected_sha256 is not None and actual != expected_sha256:
            raise ValidationError(
                f"the content hashes to {actual}, not the expected {expected_sha256}",
                field="sha256",
                expected=expected_sha256,
                actual=actual,
            )
        return BlobInfo(account, actual, self.size)


def integrity_failure(info: BlobInfo, actual_sha256: str, actual_size: int, where: str) -> IntegrityError:
    """The error for stored bytes that no longer hash to the digest that names them."""
    return IntegrityError(
        f"blob {info.sha256} in account {info.account} failed verification {where}: "
        f"found {actual_size} bytes hashing to {actual_sha256}",
        account=info.account,
        sha256=info.sha256,
        size=info.size,
        actual_sha256=actual_sha256,
        actual_size=actual_size,
    )


def verified(chunks: Iterable[bytes], info: BlobInfo, where: str = "on read") -> Iterator[bytes]:
    """Pass ``chunks`` through; at the end, IntegrityError unless they were exactly the blob."""
    digester = Digester()
    for chunk in chunks:
        digester.update(chunk)
        yield chunk
    if digester.hexdigest() != info.sha256 or digester.size != info.size:
        raise integrity_failure(info, digester.hexdigest(), digester.size, where)
