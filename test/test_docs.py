"""Docs are part of the feature: every option and config key is documented."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess

import pytest

from maglev.config import load_config_file
from maglev.config.structure import SCHEMA_KEYS
from maglev.maglevc.cli import parser as maglevc_parser
from maglev.maglevc.tree import TREE, WATCH_OPTIONS, Node
from maglev.maglevt.cli import parser as maglevt_parser
from maglev.options import MaglevOptions
from maglev.vppemu.cli import parser as vppemu_parser
from maglev.web.frontend import ENVIRONMENT as FRONTEND_ENVIRONMENT
from maglev.web.frontend import FrontendOptions

from .helpers import EXAMPLE, ROOT

USER_GUIDE = (ROOT / "docs" / "user-guide.md").read_text()
MAN = (ROOT / "docs" / "man" / "maglevd.8").read_text().replace("\\-", "-")
# maglevc's man page as words: font escapes and roff quoting removed
MAGLEVC_MAN = re.sub(r'\\f[BIRP]|"|^\.[A-Z]+ ?', "", (ROOT / "docs" / "man" / "maglevc.1").read_text(), flags=re.M)
CONFIG_GUIDE = (ROOT / "docs" / "config-guide.md").read_text()
EXAMPLE_TEXT = EXAMPLE.read_text()
OPTIONS = [o[0] for o in MaglevOptions.optParameters + MaglevOptions.optFlags] + ["version"]
FRONTEND_MAN = (ROOT / "docs" / "man" / "maglevd-frontend.8").read_text().replace("\\-", "-")
FRONTEND_OPTIONS = [o[0] for o in FrontendOptions.optParameters] + ["version"]


@pytest.mark.parametrize("option", OPTIONS)
def test_option_documented(option: str) -> None:
    assert f"--{option}" in USER_GUIDE, f"--{option} missing from docs/user-guide.md"
    assert f"--{option}" in MAN, f"--{option} missing from docs/man/maglevd.8"


@pytest.mark.parametrize("option", FRONTEND_OPTIONS)
def test_frontend_option_documented(option: str) -> None:
    assert f"--{option}" in USER_GUIDE.split("### maglevd-frontend")[1], f"maglevd-frontend --{option} not in the guide"
    assert f"--{option}" in FRONTEND_MAN, f"--{option} missing from docs/man/maglevd-frontend.8"


@pytest.mark.parametrize(
    "variable",
    [env for env, _ in FRONTEND_ENVIRONMENT.values()] + ["MAGLEV_FRONTEND_USER", "MAGLEV_FRONTEND_PASSWORD"],
)
def test_frontend_variable_documented(variable: str) -> None:
    assert variable in USER_GUIDE and variable in FRONTEND_MAN


def _flags(p: argparse.ArgumentParser) -> list[str]:
    """Each option's first spelling (``--server``, ``-config``)."""
    return [a.option_strings[0] for a in p._actions if a.option_strings and a.dest != "help"]


PROGRAM_FLAGS = [
    (name, flag, page)
    for name, p, page in (
        ("maglevc", maglevc_parser(), "maglevc.1"),
        ("maglevt", maglevt_parser(), "maglevt.1"),
        ("maglev-vppemu", vppemu_parser(), "maglev-vppemu.1"),
    )
    for flag in _flags(p)
]


@pytest.mark.parametrize(("program", "flag", "page"), PROGRAM_FLAGS)
def test_program_flag_documented(program: str, flag: str, page: str) -> None:
    assert f"`{flag}" in USER_GUIDE, f"{program} {flag} missing from docs/user-guide.md"
    man = (ROOT / "docs" / "man" / page).read_text().replace("\\-", "-")
    assert flag in man, f"{program} {flag} missing from docs/man/{page}"


@pytest.mark.parametrize("key", sorted({(s, k) for s, keys in SCHEMA_KEYS.items() for k in keys}))
def test_config_key_documented(key: tuple[str, str]) -> None:
    section, name = key
    assert re.search(rf"`{re.escape(name)}`", CONFIG_GUIDE), f"{section}.{name} missing from docs/config-guide.md"
    assert re.search(rf"(^|[\s{{,]){re.escape(name)}:", EXAMPLE_TEXT, re.M), (
        f"{section}.{name} missing from the example"
    )


def test_example_is_valid() -> None:
    load_config_file(str(EXAMPLE))


def _commands(node: Node, words: tuple[str, ...] = ()) -> list[str]:
    """Each command's keywords up to its first name slot: "show backend", "sync vpp lb state"."""
    if node.slot:
        return [" ".join(words)]
    here = (*words, node.word) if node.word else words
    found = [" ".join(here)] if node.action else []
    for child in node.children:
        found += _commands(child, here)
    return found


def _words(text: str) -> str:
    """Optional parts' brackets dropped and spaces collapsed: `sync vpp lb state frontend <frontend>`."""
    return re.sub(r"[ \t]+", " ", re.sub(r" ?[][] ?", " ", text))


@pytest.mark.parametrize("command", sorted(set(_commands(TREE))))
def test_maglevc_command_documented(command: str) -> None:
    assert f"`{command}" in _words(USER_GUIDE), f"maglevc {command!r} missing from docs/user-guide.md"
    assert command in _words(MAGLEVC_MAN), f"maglevc {command!r} missing from docs/man/maglevc.1"


@pytest.mark.parametrize("option", [o.word for o in WATCH_OPTIONS])
def test_watch_option_documented(option: str) -> None:
    assert re.search(rf"watch events .*\b{option}\b", USER_GUIDE), option
    assert re.search(rf"watch events .*\b{option}\b", MAGLEVC_MAN), option


@pytest.mark.skipif(shutil.which("groff") is None, reason="needs groff (Debian groff-base)")
@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "docs" / "man").iterdir()))
def test_man_page_renders_without_warnings(page: str) -> None:
    r = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(ROOT / "docs" / "man" / page)], capture_output=True, text=True
    )
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
