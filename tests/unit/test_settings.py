"""Settings are declared once; the docs must describe every one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    assert f"`CHARTER_{name.upper()}`" in DOC.read_text(), f"docs/configuration.md misses CHARTER_{name.upper()}"


def test_every_setting_has_a_description() -> None:
    assert [n for n, f in Settings.model_fields.items() if not f.description] == []


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHARTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHARTER_PORT", "9999")
    settings = Settings()
    assert settings.data_dir == tmp_path and settings.port == 9999
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'charter.db'}"


def test_an_invalid_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHARTER_PORT", "not-a-port")
    with pytest.raises(ValueError, match="port"):
        Settings()
