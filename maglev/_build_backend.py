"""PEP 517 backend: setuptools, plus the git commit recorded in the package.

pyproject.toml names this module so a wheel (and so an installed copy or a
Debian package) can say which commit it was built from without git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from setuptools import build_meta as _orig
from setuptools.build_meta import *  # noqa: F403

_ROOT = Path(__file__).resolve().parent.parent
_COMMIT_FILE = _ROOT / "maglev" / "BUILD_COMMIT"


def _record_commit() -> None:
    from maglev.version import git_commit

    sha = git_commit(_ROOT)
    if sha:
        _COMMIT_FILE.write_text(sha + "\n")


def build_wheel(wheel_directory: str, config_settings: Any = None, metadata_directory: Any = None) -> str:
    _record_commit()
    name: str = _orig.build_wheel(wheel_directory, config_settings, metadata_directory)
    return name


def build_sdist(sdist_directory: str, config_settings: Any = None) -> str:
    _record_commit()
    name: str = _orig.build_sdist(sdist_directory, config_settings)
    return name
