"""maglevd runs on Twisted's asyncio reactor, so grpc.aio shares its loop."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from twisted.python import usage

HOW_TO_RUN = "run `maglevd`, `twist --reactor=asyncio maglev` or `twistd -n --reactor=asyncio maglev`"


def ensure_asyncio_reactor() -> None:
    """Install the asyncio reactor unless one is installed; refuse any other reactor."""
    if "twisted.internet.reactor" not in sys.modules:
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
        return
    from twisted.internet import reactor
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if not isinstance(reactor, AsyncioSelectorReactor):
        raise usage.UsageError(
            f"maglev needs the asyncio reactor but {type(reactor).__name__} is installed: {HOW_TO_RUN}"
        )


if TYPE_CHECKING:
    # The reactor as Twisted types its global one: core, time, file descriptors, TCP,
    # processes. Collaborators that need less take the one interface they use
    # (IReactorTime for a clock); threads are adapted where used (IReactorFromThreads(r)).
    from twisted.internet import _IReactorCommon as Reactor

__all__ = ["HOW_TO_RUN", "Reactor", "ensure_asyncio_reactor"]
