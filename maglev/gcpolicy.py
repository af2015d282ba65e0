"""Keep the cyclic garbage collector from pausing the reactor.

With 10,000 backends the daemon holds a few hundred thousand long-lived
objects (config, probers, state machines). Python's full collections walk all
of them, pausing the reactor 50-150 ms at a time, which shows up directly as
probe scheduling lateness. Once the service tree is built (at start and after
each reload) we collect once and freeze what survives: later collections only
walk objects created since (see docs/performance.md).
"""

from __future__ import annotations

import gc

from .log import Logger

log = Logger(namespace="maglev.gcpolicy")


def freeze_long_lived() -> int:
    """Collect, then move every surviving object to the permanent generation."""
    gc.unfreeze()  # re-examine what was frozen before: removed backends must be collectable
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("froze {count} long-lived objects", event="gc-freeze", count=frozen)
    return frozen
