"""Template archives for the catalog tests: the example templates packed, and hostile archives."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "examples" / "acme" / "templates"


def pack(files: dict[str, bytes], extra: Callable[[tarfile.TarFile], None] | None = None,
         encoding: str = "utf-8") -> bytes:
    """A tar.gz holding ``files``; ``extra`` may add members of other kinds."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT, encoding=encoding) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(tar)
    return buffer.getvalue()


def template_files(name: str) -> dict[str, bytes]:
    root = TEMPLATES / name
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def template(name: str) -> bytes:
    return pack(template_files(name))


def special(name: str, kind: bytes, linkname: str = "") -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        tar.addfile(info)

    return add
