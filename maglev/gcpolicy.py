"""Keep the cyclic garbage collector from pausing the reactor.

With 10,000 backends the daemon holds a few hundred thousand long-lived objects
(config, probers, state machines). Python's full collections walk all of them, pausing
the reactor 50-150 ms at a time, which shows up directly as probe scheduling lateness.
Once the service tree is built (at start and after each reload) we collect and freeze
what survives: later collections only walk objects created since (docs/performance.md).

At start the collection is full. After that (once after the first complete sync, when
the warm-up and the first full read of VPP have made objects that live as long, and
after each reload) it walks only the two young generations, then freezes the rest as it
is: what a reload dropped is freed by refcounting (a prober lets go of its own bound
callbacks, ``BackendProber.dispose``; test_gcpolicy.py holds a reload to leaving no
cycles). A full collection of 10,000 backends took 0.3 s of the reactor, and one of
what was not frozen yet 0.1-0.2 s: by then the new configuration's objects have aged
into the oldest generation. Should cycles be left anyway, every tenth collection is
full again, so they are kept for ten at most. (The frozen count would say how much has
grown, but counting walks the whole permanent generation: 0.13 s.)
"""

from __future__ import annotations

import gc
from types import ModuleType

from twisted.internet.interfaces import IReactorTime

from .bus import EventBus
from .events import ConfigLoaded, LbSynced
from .log import Logger

log = Logger(namespace="maglev.gcpolicy")

FULL_EVERY = 10
"""Collections (the start's, the first complete sync's, each reload's) from one full one to the next."""


class LongLivedObjects:
    """When to collect and freeze what survives, and whether that collection is full."""

    def __init__(self, collector: ModuleType = gc) -> None:
        self._gc = collector
        self._settled = 0  # since the last full collection
        self._warm = False

    def watch(self, bus: EventBus, reactor: IReactorTime) -> None:
        """Settle after the start and each reload, and once after the first complete sync
        (what the warm-up and the first full read of VPP made lives as long), each time
        once that turn's work is done."""

        def loaded(_: ConfigLoaded) -> None:
            reactor.callLater(0, self.settle)

        def synced(e: LbSynced) -> None:
            if e.complete and not self._warm:
                self._warm = True
                reactor.callLater(0, self.settle)

        bus.subscribe(ConfigLoaded, loaded)
        bus.subscribe(LbSynced, synced)

    def settle(self) -> bool:
        """Collect, then move every surviving object to the permanent generation; whether
        the collection was full (the first, then every FULL_EVERY-th)."""
        g = self._gc
        full = self._settled % FULL_EVERY == 0
        self._settled += 1
        if full:
            g.unfreeze()  # re-examine what was frozen before
            g.collect()
        else:
            g.collect(1)  # the young: what the oldest generation holds is frozen unwalked
        g.freeze()
        log.debug("froze the long-lived objects", event="gc-freeze", full=full)
        return full
