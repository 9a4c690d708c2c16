"""docs/providers/neon.md stays true to the settings model: every setting is named there."""

from __future__ import annotations

from pathlib import Path

from skyrig_neon.settings import NeonSettings

PAGE = Path(__file__).resolve().parents[3] / "docs" / "providers" / "neon.md"


def test_every_setting_is_documented() -> None:
    text = PAGE.read_text()
    missing = [name for name in NeonSettings.model_fields if f"`{name}`" not in text]
    assert not missing, f"settings not in docs/providers/neon.md: {missing}"
