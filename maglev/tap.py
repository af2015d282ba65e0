"""The twistd plugin's module: Options and makeService.

Imports stay light here: twistd imports this module to parse the options, and
anything that imports ``twisted.internet.reactor`` before ``postOptions`` runs
would install the default reactor instead of the asyncio one maglev needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.application.service import IService

from .options import MaglevOptions

if TYPE_CHECKING:
    from .reactor import Reactor

Options = MaglevOptions


def makeService(options: MaglevOptions, reactor: Reactor | None = None) -> IService:
    from .app import build_service

    return build_service(options.settings, reactor)
