"""maglevd runs on Twisted's asyncio reactor, so grpc.aio shares its loop; the probes' timers and
readers use that loop directly."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from twisted.internet.interfaces import IReadDescriptor
from twisted.python import usage
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorFDSet
    from twisted.logger import Logger

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


def event_loop_of(clock: object) -> asyncio.AbstractEventLoop | None:
    """The asyncio loop under ``clock`` if it is Twisted's asyncio reactor, else None (a
    test's ``task.Clock``, another reactor).

    The probes' wake-ups go to it directly (``timers.Alarm``, ``watch_reader``): a timer
    through the reactor costs a DelayedCall, Twisted's own heap, its log context and two
    asyncio timer handles a wake-up, and a reader its log context; about 45 µs of CPU a
    wake-up on this project's 2-core VM, a fifth of a connect check's cost at 100 backends
    (docs/performance.md). Twisted keeps the loop in a private attribute; this is the one
    place that reads it.
    """
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if isinstance(clock, AsyncioSelectorReactor):
        loop: asyncio.AbstractEventLoop = clock._asyncioEventloop
        return loop
    return None


def watch_reader(reactor: object, reader: IReadDescriptor, log: Logger) -> Callable[[], None]:
    """Call ``reader.doRead`` whenever its ``fileno()`` is readable; returns what stops it.

    On the asyncio reactor the loop watches the descriptor itself (``event_loop_of``); what
    ``doRead`` raises is logged as ``reader-failed`` and ends the reader through its
    ``connectionLost``, as the reactor would. Elsewhere (a test's ``MemoryReactor``) it is
    the reactor's ``addReader``.
    """
    loop = event_loop_of(reactor)
    if loop is None:
        readers = cast("IReactorFDSet", reactor)
        readers.addReader(reader)
        return lambda: readers.removeReader(reader)
    fd = reader.fileno()

    def readable() -> None:
        try:
            reader.doRead()
        except Exception:
            failure = Failure()
            log.failure("{reader} failed; closing it", failure, event="reader-failed", reader=reader.logPrefix())
            reader.connectionLost(failure)

    loop.add_reader(fd, readable)

    def stop() -> None:
        loop.remove_reader(fd)

    return stop


if TYPE_CHECKING:
    # The reactor as Twisted types its global one: core, time, file descriptors, TCP,
    # processes. Collaborators that need less take the one interface they use
    # (IReactorTime for a clock); threads are adapted where used (IReactorFromThreads(r)).
    from twisted.internet import _IReactorCommon as Reactor

__all__ = ["HOW_TO_RUN", "Reactor", "ensure_asyncio_reactor", "event_loop_of", "watch_reader"]
