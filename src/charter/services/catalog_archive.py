"""Template archives (tar.gz) read safely: every member checked before any byte is stored.

Refused: absolute names, ``..``, links of any kind (symbolic or hard), devices, FIFOs and every
other special member, names that do not decode as UTF-8, duplicate members, a path that is both a
file and a folder, and archives over the count and size limits. A member outside the folder the
template sits in (``path``, from ``git archive COMMIT SUB``) is refused too, except the folders
above it.
"""

from __future__ import annotations

import gzip
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from charter.domain.catalog import MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES, PRODUCT_FILE
from charter.domain.registry import check_artifact_path
from charter.errors import TooLarge, ValidationError

SPOOL_BYTES = 8 * 1024 * 1024
CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Member:
    path: str
    """Its path in the product (the template folder's prefix removed)."""
    info: tarfile.TarInfo


def spool(chunks: Iterable[bytes], max_bytes: int) -> IO[bytes]:
    """The streamed archive in a temporary file (memory first); TooLarge past ``max_bytes``."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"the archive is larger than {max_bytes} bytes", limit=max_bytes)
            out.write(chunk)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def _refuse(name: str, reason: str) -> ValidationError:
    return ValidationError(f"archive member {name!r}: {reason}", field="archive", member=name[:512])


def _kind(info: tarfile.TarInfo) -> str | None:
    """Why a member's type is refused, or None for a regular file or a folder."""
    if info.issym() or info.islnk():
        return "links are not allowed in a template"
    if info.ischr() or info.isblk():
        return "devices are not allowed in a template"
    if info.isfifo():
        return "FIFOs are not allowed in a template"
    if info.issparse() or not (info.isreg() or info.isdir()):
        return "only regular files and folders are allowed in a template"
    return None


def _relative(name: str, prefix: str | None, is_dir: bool) -> str | None:
    """The member's path inside the template, None for a folder to skip; ValidationError when the
    name is unsafe or outside the template's folder."""
    if name.startswith("/") or name.startswith("\\"):
        raise _refuse(name, "absolute paths are not allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise _refuse(name, "control characters are not allowed in names")
    path = name.rstrip("/") if is_dir else name
    while path.startswith("./"):
        path = path[2:]
    if ".." in path.split("/"):
        raise _refuse(name, "'..' is not allowed in paths")
    if path in ("", "."):
        return None
    if prefix is not None:
        if path == prefix or prefix.startswith(path + "/"):
            if is_dir:
                return None
            raise _refuse(name, f"lies outside the template folder {prefix!r}")
        if not path.startswith(prefix + "/"):
            raise _refuse(name, f"lies outside the template folder {prefix!r}")
        path = path[len(prefix) + 1:]
    try:
        check_artifact_path(path)
    except ValidationError as invalid:
        raise _refuse(name, invalid.message) from None
    return None if is_dir else path


def open_archive(fileobj: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=fileobj, mode="r:gz", encoding="utf-8", errors="strict")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise ValidationError(f"not a gzip-compressed tar archive: {error}", field="archive") from None


def members(tar: tarfile.TarFile, prefix: str | None = None, *,
            required: str = PRODUCT_FILE) -> list[Member]:
    """Every file of the archive, checked; refuses the whole archive at its first bad member, and
    one without the ``required`` file."""
    if prefix is not None:
        check_artifact_path(prefix)
    out: list[Member] = []
    seen: set[str] = set()
    folders: set[str] = set()
    total = 0
    try:
        for info in tar:
            why = _kind(info)
            if why is not None:
                raise _refuse(info.name, why)
            path = _relative(info.name, prefix, info.isdir())
            if info.isdir():
                if path is not None and path in seen:
                    raise _refuse(info.name, "is both a file and a folder")
                continue
            assert path is not None
            if path in seen:
                raise _refuse(info.name, "appears twice in the archive")
            if path in folders or any(p in seen for p in _parents(path)):
                raise _refuse(info.name, "is both a file and a folder")
            seen.add(path)
            folders.update(_parents(path))
            if len(seen) > MAX_FILES:
                raise TooLarge(f"a template holds at most {MAX_FILES} files", limit=MAX_FILES)
            if info.size > MAX_FILE_BYTES:
                raise TooLarge(f"{path} is larger than {MAX_FILE_BYTES} bytes", limit=MAX_FILE_BYTES, path=path)
            total += info.size
            if total > MAX_TOTAL_BYTES:
                raise TooLarge(f"a template holds at most {MAX_TOTAL_BYTES} bytes", limit=MAX_TOTAL_BYTES)
            out.append(Member(path, info))
    except UnicodeDecodeError:
        raise ValidationError("archive member names must be UTF-8", field="archive") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ValidationError(f"the archive is damaged: {error}", field="archive") from None
    if required not in seen:
        where = f" in {prefix}/" if prefix else " at its root"
        raise ValidationError(f"the archive has no {required}{where}", field="archive")
    return out


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def content(tar: tarfile.TarFile, member: Member) -> Iterator[bytes]:
    """A member's bytes in chunks."""
    reader = tar.extractfile(member.info)
    if reader is None:  # not a regular file: members() lets none through
        raise ValidationError(f"{member.path} is not a file", field="archive")
    with reader:
        try:
            while chunk := reader.read(CHUNK):
                yield chunk
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            raise ValidationError(f"the archive is damaged at {member.path}: {error}", field="archive") from None


def read_small(tar: tarfile.TarFile, member: Member, limit: int) -> bytes:
    if member.info.size > limit:
        raise TooLarge(f"{member.path} is larger than {limit} bytes", limit=limit, path=member.path)
    return b"".join(content(tar, member))
