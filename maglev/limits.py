"""Process resource limits a health checker needs (no Twisted: benchmarks use it too)."""

from __future__ import annotations

import resource

OPEN_FILES_CAP = 1 << 20  # when the hard limit is unlimited


def raise_open_files() -> tuple[int, int]:
    """Raise the soft limit of open files to the hard one; (before, after).

    Every probe in flight holds a socket, and the prober keeps idle ones for reuse:
    thousands of backends timing out together need far more than the usual soft
    limit of 1,024, and a probe that cannot get a socket fails (L4CON), which would
    take a healthy backend down."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = OPEN_FILES_CAP if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, soft
        return soft, target
    return soft, soft
