"""Start ``maglev-vppemu`` as a child process and wait until it serves (tests, benchmarks, demo)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from ..childproc import tied_to_parent


def _relay(lines: IO[str]) -> None:
    for line in lines:  # whole lines onto fd 1, beside the parent's own log lines
        try:
            os.write(1, line.encode())
        except OSError:
            return


def start_emulator(
    api_socket: str, stats_socket: str, api_dir: str | None = None, *extra: str, timeout: float = 30.0
) -> subprocess.Popen[str]:
    """The emulator's process, once its ``vppemu-ready`` log line has been seen."""
    root = Path(__file__).resolve().parents[2]
    args = [sys.executable, "-m", "maglev.vppemu", "--api-socket", api_socket, "--stats-socket", stats_socket]
    if api_dir:
        args += ["--api-dir", api_dir]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([*args, *extra], stdout=subprocess.PIPE, text=True, env=env, preexec_fn=tied_to_parent)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:  # the child exited
            proc.wait(timeout)
            raise RuntimeError(f"maglev-vppemu exited with status {proc.returncode} before serving")
        try:
            if json.loads(line).get("event") == "vppemu-ready":
                # its later lines go on to our stdout: read, its pipe never fills and stalls it
                threading.Thread(target=_relay, args=(proc.stdout,), name="vppemu-log", daemon=True).start()
                return proc
        except ValueError:
            continue
    proc.kill()
    proc.wait()
    raise RuntimeError(f"maglev-vppemu did not serve within {timeout}s")
