"""Shared test settings: every test gets its own config directory so no real profile is touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.seaweed import SeaweedFS, running_seaweedfs


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CHARTER_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    yield


EXAMPLE: Path = Path(__file__).resolve().parents[1] / "examples" / "acme" / "charter.yaml"


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS S3 server per test session (per xdist worker), with a bucket ``charter-test``."""
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
