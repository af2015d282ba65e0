"""Reads and checks a configuration file for maglevd, in a process of its own.

    python -m maglev.configworker PATH

Writes one pickle to stdout: ``("config", Config)``, or ``("error", ErrorKind, [Problem])``
for a file with problems. maglevd's reloads run this (``configservice.process_loader``):
parsing 10,000 backends is 1.2-1.8 s of Python, and on a thread of the daemon it held the
GIL from the reactor, whose every system call then waited for it, so probes and the API
stalled for the whole parse (docs/performance.md). A process of its own competes for a
core at most. The pickle goes only from this child to the maglevd that started it.
"""

from __future__ import annotations

import copyreg
import pickle
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .childproc import tied_to_parent
from .config import ConfigError, load_config_file
from .config.model import frozen_map


def _frozen(m: Mapping[str, Any]) -> tuple[Any, tuple[dict[str, Any]]]:
    return frozen_map, (dict(m),)  # the config's read-only maps, rebuilt as they were


def main(argv: list[str]) -> int:
    tied_to_parent()  # gone with the maglevd that waits for it
    if len(argv) != 1:
        print("usage: python -m maglev.configworker PATH", file=sys.stderr)
        return 2
    copyreg.pickle(MappingProxyType, _frozen)
    try:
        out: tuple[Any, ...] = ("config", load_config_file(argv[0]))
    except ConfigError as e:
        out = ("error", e.kind, list(e.problems))
    sys.stdout.buffer.write(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
