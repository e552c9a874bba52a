"""Blobs as read-only files under one root directory.

A write streams into a private temporary file in the account's ``.staging`` directory (the same
filesystem as the account's blobs), is hashed on the way, flushed and fsynced, made read-only, and
only then renamed onto its content-derived name with ``os.replace`` (atomic on POSIX); the
directory is fsynced so the rename survives a crash. A refused or failed write removes its
temporary file, so a reader sees either no blob or the whole verified blob.

Every path is derived from (account, digest) and must resolve to itself under the resolved root:
a symbolic link anywhere below the root is refused rather than followed.
"""

from __future__ import annotations

import errno
import os
import stat as st
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from charter.adapters.artifacts import CHUNK_BYTES
from charter.adapters.artifacts.pipelined import PipelinedWriter, kernel_copy_verified
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
from charter.errors import IntegrityError, NotFound

READ_ONLY = 0o444
COPY_CHUNK_BYTES = 8 * 1024 * 1024  # a copy reads big: fewer system calls, and hashlib on its own thread


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunks(source: BinaryIO, size: int) -> Iterator[bytes]:
    with source:
        while chunk := source.read(size):
            yield chunk


class FileArtifactStore:
    """An ``ArtifactStore`` on a local filesystem: ``<root>/<account>/sha256/ab/cd/<digest>``."""

    local = True

    def __init__(self, root: Path, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._root = root.resolve(strict=True)
        self._chunk_bytes = chunk_bytes

    @property
    def root(self) -> Path:
        return self._root

    # -- the port -------------------------------------------------------------------------------

    def put(
        self,
        account: str,
        chunks: Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> BlobInfo:
        check_name(account, "account")
        if expected_sha256 is not None:
            check_digest(expected_sha256, "expected_sha256")
        digester = Digester(max_bytes)
        fd, tmp = self._temporary(account)
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                writer = PipelinedWriter(out.fileno(), digester)
                try:
                    for chunk in chunks:
                        writer.write(chunk)
                    writer.wait()
                except BaseException:
                    writer.abandon()
                    raise
                info = digester.result(account, expected_sha256)
                writer.finish()
            self._publish(tmp, info)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return info

    def open(self, account: str, sha256: str) -> Iterator[bytes]:
        source, size = self._open(account, sha256)
        return verified(_chunks(source, self._chunk_bytes), BlobInfo(account, sha256, size))

    def stat(self, account: str, sha256: str) -> BlobInfo | None:
        path = self._blob_path(account, sha256)
        try:
            found = path.lstat()
        except FileNotFoundError:
            return None
        if not st.S_ISREG(found.st_mode):
            raise IntegrityError(f"the stored blob {sha256} in account {account} is not a regular file",
                                 account=account, sha256=sha256)
        return BlobInfo(account, sha256, found.st_size)

    def digests(self, account: str) -> Iterator[str]:
        top = self._inside(f"{check_name(account, 'account')}/{ALGORITHM}")
        if not top.is_dir():
            return
        for path in sorted(top.glob("*/*/*")):
            if SHA256_PATTERN.fullmatch(path.name) and path.parent.parent.name == path.name[:2] \
                    and path.parent.name == path.name[2:4] and path.is_file() and not path.is_symlink():
                yield path.name

    def copy(self, src_account: str, dst_account: str, sha256: str) -> BlobInfo:
        check_name(dst_account, "account")
        if src_account == dst_account:
            info = self.stat(src_account, sha256)
            if info is None:
                raise self._not_found(src_account, sha256)
            return info
        source, size = self._open(src_account, sha256)
        digester = Digester()
        with source:
            fd, tmp = self._temporary(dst_account)
            try:
                with os.fdopen(fd, "wb", buffering=0) as out:
                    if not kernel_copy_verified(source.fileno(), out.fileno(), size, digester):
                        self._copy_through(source, out.fileno(), digester)
                    if digester.hexdigest() != sha256 or digester.size != size:
                        raise integrity_failure(BlobInfo(src_account, sha256, size), digester.hexdigest(),
                                                digester.size, f"on copy to account {dst_account}")
                info = BlobInfo(dst_account, sha256, digester.size)
                self._publish(tmp, info)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return info

    @staticmethod
    def _copy_through(source: BinaryIO, fd: int, digester: Digester) -> None:
        """Copy through this process (where the kernel cannot copy between the two files)."""
        writer = PipelinedWriter(fd, digester)
        try:
            for chunk in _chunks(source, COPY_CHUNK_BYTES):
                writer.write(chunk)
            writer.wait()
        except BaseException:
            writer.abandon()
            raise
        writer.finish()

    # -- paths ----------------------------------------------------------------------------------

    def _inside(self, relative: str) -> Path:
        """``root/relative``, refused unless it resolves to itself: no link, no escape."""
        path = self._root.joinpath(*relative.split("/"))
        if path.resolve() != path:
            raise IntegrityError(f"the storage path {relative!r} passes through a link or leaves "
                                 "the store root", key=relative)
        return path

    def _blob_path(self, account: str, sha256: str) -> Path:
        return self._inside(blob_key(account, sha256))

    def _makedirs(self, path: Path) -> None:
        """Create ``path`` and its missing parents, each made durable in its parent directory."""
        missing: list[Path] = []
        while path != self._root and not path.is_dir():
            missing.append(path)
            path = path.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=0o700 if directory.name == STAGING else 0o755)
            except FileExistsError:
                pass
            _fsync_dir(directory.parent)

    def _temporary(self, account: str) -> tuple[int, Path]:
        self._makedirs(self._inside(f"{account}/{STAGING}"))
        staging = self._inside(f"{account}/{STAGING}")  # checked again once it exists
        fd, name = tempfile.mkstemp(prefix="blob-", suffix=".part", dir=staging)
        return fd, Path(name)

    def _publish(self, tmp: Path, info: BlobInfo) -> None:
        """Make a complete, verified, fsynced temporary file the blob, atomically."""
        os.chmod(tmp, READ_ONLY)
        final = self._blob_path(info.account, info.sha256)
        self._makedirs(final.parent)
        final = self._blob_path(info.account, info.sha256)  # checked again once the parents exist
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def _open(self, account: str, sha256: str) -> tuple[BinaryIO, int]:
        path = self._blob_path(account, sha256)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(account, sha256) from None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise IntegrityError(f"the stored blob {sha256} in account {account} is a link",
                                     account=account, sha256=sha256) from None
            raise
        source = os.fdopen(fd, "rb")
        found = os.fstat(fd)
        if not st.S_ISREG(found.st_mode):
            source.close()
            raise IntegrityError(f"the stored blob {sha256} in account {account} is not a regular file",
                                 account=account, sha256=sha256)
        return source, found.st_size

    @staticmethod
    def _not_found(account: str, sha256: str) -> NotFound:
        return NotFound(f"account {account} holds no blob {sha256}", account=account, sha256=sha256)
