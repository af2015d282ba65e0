"""Reads and checks a configuration file for maglevd, in a process of its own.

    python -m maglev.configworker PATH

Writes pickles to stdout, from one pickler (its memo shared): ``("part", [objects])`` a few
times, then ``("config", Config)``, or ``("error", ErrorKind, [Problem])`` for a file with
problems. The parts hold the config's backends and frontends, a few hundred at a time, so
the daemon unpickles them over several turns of its reactor (10,000 backends in one
``pickle.loads``: 0.13 s with probes and the API waiting); the config's own pickle then
refers to them. maglevd's reloads run this (``configservice.process_loader``):
parsing 10,000 backends is 1.2-1.8 s of Python, and on a thread of the daemon it held the
GIL from the reactor, whose every system call then waited for it, so probes and the API
stalled for the whole parse (docs/performance.md). A process of its own competes for a
core at most. The pickle goes only from this child to the maglevd that started it.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from .childproc import tied_to_parent
from .config import Config, ConfigError, load_config_file
from .config.model import frozen_map

PART = 500  # objects per part: a few ms to unpickle


def _frozen(m: Mapping[str, Any]) -> tuple[Any, tuple[dict[str, Any]]]:
    return frozen_map, (dict(m),)  # the config's read-only maps, rebuilt as they were


def main(argv: list[str]) -> int:
    tied_to_parent()  # gone with the maglevd that waits for it
    if len(argv) != 1:
        print("usage: python -m maglev.configworker PATH", file=sys.stderr)
        return 2
    copyreg.pickle(MappingProxyType, _frozen)
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        cfg = load_config_file(argv[0])
    except ConfigError as e:
        pickler.dump(("error", e.kind, list(e.problems)))
    else:
        for part in parts(cfg):
            pickler.dump(("part", part))
        pickler.dump(("config", cfg))
    sys.stdout.buffer.write(buf.getvalue())
    sys.stdout.buffer.flush()
    return 0


def parts(cfg: Config, size: int = PART) -> Iterator[list[Any]]:
    """The config's backends, then its frontends, ``size`` at a time."""
    for objects in (list(cfg.backends.values()), list(cfg.frontends.values())):
        for i in range(0, len(objects), size):
            yield objects[i : i + size]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
