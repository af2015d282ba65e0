"""Helper processes: default signal dispositions whatever the parent's, and gone with the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maglev.childproc import tied_to_parent

ROOT = Path(__file__).resolve().parent.parent

# A parent that ignores SIGINT (as a shell's background job does) starts a child.
PARENT = """
import signal, subprocess, sys, time
from maglev.childproc import tied_to_parent
signal.signal(signal.SIGINT, signal.SIG_IGN)
kw = {"preexec_fn": tied_to_parent} if sys.argv[1] == "tied" else {}
child = subprocess.Popen([sys.executable, "-c",
    "import signal, sys, time; print(repr(signal.getsignal(signal.SIGINT)), flush=True); time.sleep(60)"],
    stdout=sys.stdout, **kw)
print(child.pid, flush=True)
time.sleep(60)
"""


def run_parent(mode: str) -> tuple[subprocess.Popen[str], str, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True, env=env, preexec_fn=tied_to_parent
    )
    assert parent.stdout is not None
    lines = sorted((parent.stdout.readline().strip(), parent.stdout.readline().strip()), key=lambda x: x.isdigit())
    return parent, lines[0], int(lines[1])


def gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether the process is gone (reaped or a zombie) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_tied_child_has_default_sigint_and_dies_with_its_parent() -> None:
    parent, disposition, child = run_parent("tied")
    try:
        # the OS default reached the child: Python then installs its KeyboardInterrupt handler
        assert "default_int_handler" in disposition, disposition
        parent.kill()
        parent.wait()
        assert gone(child), "the kernel kills the child when its parent dies"
    finally:
        if not gone(child, 0):
            os.kill(child, signal.SIGKILL)


def test_an_untied_child_inherits_an_ignored_sigint() -> None:
    """What tied_to_parent is for: without it the child ignores SIGINT too (and outlives us)."""
    parent, disposition, child = run_parent("plain")
    try:
        assert "SIG_IGN" in disposition, disposition
    finally:
        parent.kill()
        parent.wait()
        os.kill(child, signal.SIGKILL)
