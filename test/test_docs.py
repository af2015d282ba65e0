"""Docs are part of the feature: every option and config key is documented."""

from __future__ import annotations

import re

import pytest

from maglev.config import load_config_file
from maglev.config.structure import SCHEMA_KEYS
from maglev.options import MaglevOptions

from .helpers import EXAMPLE, ROOT

USER_GUIDE = (ROOT / "docs" / "user-guide.md").read_text()
MAN = (ROOT / "docs" / "man" / "maglevd.8").read_text().replace("\\-", "-")
CONFIG_GUIDE = (ROOT / "docs" / "config-guide.md").read_text()
EXAMPLE_TEXT = EXAMPLE.read_text()
OPTIONS = [o[0] for o in MaglevOptions.optParameters + MaglevOptions.optFlags] + ["version"]


@pytest.mark.parametrize("option", OPTIONS)
def test_option_documented(option: str) -> None:
    assert f"--{option}" in USER_GUIDE, f"--{option} missing from docs/user-guide.md"
    assert f"--{option}" in MAN, f"--{option} missing from docs/man/maglevd.8"


@pytest.mark.parametrize("key", sorted({(s, k) for s, keys in SCHEMA_KEYS.items() for k in keys}))
def test_config_key_documented(key: tuple[str, str]) -> None:
    section, name = key
    assert re.search(rf"`{re.escape(name)}`", CONFIG_GUIDE), f"{section}.{name} missing from docs/config-guide.md"
    assert re.search(rf"(^|[\s{{,]){re.escape(name)}:", EXAMPLE_TEXT, re.M), (
        f"{section}.{name} missing from the example"
    )


def test_example_is_valid() -> None:
    load_config_file(str(EXAMPLE))
