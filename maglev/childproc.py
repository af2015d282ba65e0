"""Helper processes tied to the process that starts them (the demo's emulator, tests' daemons).

``tied_to_parent`` runs in the child between fork and exec: SIGINT, SIGTERM and SIGHUP get
their default dispositions back (a shell's background job starts with SIGINT ignored, and a
child would inherit that), and the kernel kills the child when its parent dies
(``PR_SET_PDEATHSIG``), so a killed test run or demo leaves nothing running under PID 1.
Linux only; elsewhere the signals are reset and nothing else is done.
"""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def tied_to_parent() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


__all__ = ["tied_to_parent"]
