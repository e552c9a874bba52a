"""Shared test settings: every test gets its own config directory so no real profile is touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CHARTER_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    yield


EXAMPLE: Path = Path(__file__).resolve().parents[1] / "examples" / "acme" / "charter.yaml"
