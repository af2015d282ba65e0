"""Version and git commit, for --version, logs and maglev_build_info.

The commit is written into the package as BUILD_COMMIT when a wheel is built
(see ``maglev/_build_backend.py``); a source checkout asks git instead.
"""

from __future__ import annotations

import functools
import subprocess
from importlib import resources
from pathlib import Path

from . import __version__

UNKNOWN = "unknown"


@functools.lru_cache(maxsize=1)
def commit() -> str:
    try:
        text = resources.files("maglev").joinpath("BUILD_COMMIT").read_text().strip()
        if text:
            return text
    except (FileNotFoundError, OSError):
        pass
    return git_commit(Path(__file__).resolve().parent.parent) or UNKNOWN


def git_commit(directory: Path) -> str | None:
    """``<sha>`` or ``<sha>-dirty`` for a git work tree, else None."""
    if not (directory / ".git").exists():
        return None
    try:
        sha = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


def version_line(program: str) -> str:
    return f"{program} {__version__} (commit {commit()})"
