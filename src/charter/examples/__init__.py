"""Example organizations shipped with Charter (``examples/`` in the repository)."""

from __future__ import annotations

from importlib import resources as package_files
from pathlib import Path


def acme_file() -> Path:
    """The article's organization: ``examples/acme/charter.yaml``."""
    return Path(str(package_files.files("charter") / "examples" / "acme" / "charter.yaml"))


def acme_document() -> str:
    return acme_file().read_text()
