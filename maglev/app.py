"""The service tree and its wiring. No logic lives here.

    maglev (MaglevService)
    ├── config    ConfigService: the running Config, reload on SIGHUP
    ├── health    HealthService: one prober per backend, the state machines
    ├── vpp       LbSync: programs VPP's lb plugin from config + health (own thread)
    ├── grpc      GrpcService: the gRPC API (grpc.aio on the reactor's loop)
    ├── web       WebService: the Klein web UI (when --web-addr is set)
    ├── metrics   MetricsService: /metrics (when --metrics-addr is set)
    └── manhole   ManholeService (when --manhole-addr is set)

Each service is wired explicitly; the reloadable ones register with the
ConfigService in the order their reconfigure must run (health before the VPP sync,
so the sync sees the new backends' states). Services read each other only through
their ``view``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred

from . import __version__
from .api.guard import TokensFile
from .api.local import LocalStub
from .api.service import GrpcService, security_posture
from .api.servicer import MaglevServicer
from .api.tls import ServerTls
from .audit import Audit
from .bus import EventBus
from .configservice import ConfigService
from .dataplane.metrics import FrontendMetrics, VppCollector, VppMetrics
from .dataplane.service import LbSync
from .gcpolicy import LongLivedObjects
from .health.agent import AgentService
from .health.metrics import HealthMetrics, LatenessCollector
from .health.service import HealthService
from .limits import raise_open_files
from .log import Logger, set_level
from .manhole import ManholeService
from .metrics import MaglevMetrics, MetricsService
from .options import Settings
from .overrideservice import OverrideService
from .version import commit
from .web.hosts import HostCheck
from .web.service import WebService, local_name, make_web
from .web.source import DaemonSource

if TYPE_CHECKING:
    from .reactor import Reactor


class MaglevService(MultiService):
    """The root: owns the bus and the config holder; children are siblings."""

    log = Logger()

    def __init__(self, bus: EventBus, config: ConfigService, metrics: MaglevMetrics) -> None:
        super().__init__()
        self.setName("maglev")
        self.bus = bus
        self.config = config
        self.metrics = metrics
        self._closers: list[Callable[[], object]] = []

    def startService(self) -> None:
        self.log.info("maglevd started", event="started", services=[s.name for s in self])
        super().startService()

    def addCloser(self, close: Callable[[], object]) -> None:
        """Something that is not a service but must let go when the daemon stops (after the children)."""
        self._closers.append(close)

    def stopService(self) -> Deferred[None]:
        self.log.info("maglevd stopping", event="stopping")
        d: Deferred[None] = super().stopService()

        def closed(passthrough: object) -> object:
            for close in self._closers:
                close()
            return passthrough

        return d.addBoth(closed)


def build_service(settings: Settings, reactor: Reactor | None = None) -> IService:
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    set_level(settings.log_level)
    log = Logger(namespace="maglev")
    log.info(
        "starting maglevd {version} (commit {commit})",
        event="starting",
        version=__version__,
        commit=commit(),
        settings=settings.describe(),
    )
    before, after = raise_open_files()
    log.info("open files limit {limit} (was {before})", event="open-files", limit=after, before=before)
    bus = EventBus()
    LongLivedObjects().watch(bus, reactor)
    metrics = MaglevMetrics()
    metrics.watch(bus)
    config = ConfigService(settings.config_path, settings.config, bus, reactor, handle_sighup=True)
    root = MaglevService(bus, config, metrics)
    config.setServiceParent(root)

    health = HealthService(config.config, bus, reactor)
    health_metrics = HealthMetrics(health.view)
    health_metrics.watch(bus)
    metrics.paged.append(health_metrics)
    metrics.registry.register(LatenessCollector(health.view))
    health.setServiceParent(root)
    config.add_reconfigurable(health)
    agents = AgentService(config.config, bus, reactor)  # backends' agents (agent: in the config)
    agents.setServiceParent(root)
    config.add_reconfigurable(agents)

    vpp_metrics = VppMetrics(metrics.registry)
    lbsync = LbSync(
        config.config,
        bus,
        reactor,
        backend_states=health.view.states,
        api_addr=settings.vpp_api_addr,
        stats_addr=settings.vpp_stats_addr,
        api_dir=settings.vpp_api_dir,
        api_counter=vpp_metrics.api,
        sync_counter=vpp_metrics.lbsync,
    )
    metrics.registry.register(VppCollector(lbsync.view))
    metrics.paged.append(FrontendMetrics(lbsync.view))
    # Between the two: saved overrides are applied to the health states before VPP's first write.
    overrides = OverrideService(health, lbsync, bus, reactor, settings.state_dir, wallclock=time.time)
    overrides.setServiceParent(root)
    config.add_reconfigurable(overrides)
    lbsync.setServiceParent(root)
    config.add_reconfigurable(lbsync)

    audit = Audit(metrics.registry)
    tls = ServerTls(settings.grpc_tls) if settings.grpc_tls is not None else None
    tokens = TokensFile(settings.grpc_tokens)
    security = (
        security_posture(settings.grpc_addr, tls, tokens)
        if settings.grpc_addr is not None
        else ("no gRPC listener", ())
    )
    # The servicer also backs the web UI in-process, so it exists even without a gRPC listener.
    servicer = MaglevServicer(config, health, lbsync, bus, started=time.time(), security=security, overrides=overrides)
    root.addCloser(servicer.close)
    if settings.grpc_addr is not None:
        GrpcService(settings.grpc_addr, servicer, settings.reflection, tls, tokens, audit, bus).setServiceParent(root)
    if settings.web_addr is not None:
        web = make_web(
            reactor, settings.admin_credentials, HostCheck(settings.web_addr, settings.web_allowed_hosts), audit
        )
        web.add_source(
            DaemonSource(local_name(), "local", LocalStub(servicer), web.on_event, web.on_status, remote=False)
        )
        WebService(web, settings.web_addr, reactor).setServiceParent(root)

    MetricsService(metrics, settings.metrics_addr, reactor).setServiceParent(root)
    if settings.manhole_addr is not None:
        namespace: dict[str, Any] = {
            "maglev": root,
            "bus": bus,
            "config": config,
            "health": health,
            "vpp": lbsync,
            "reactor": reactor,
        }
        ManholeService(
            settings.manhole_addr,
            namespace,
            reactor,
            authorized_keys=settings.manhole_authorized_keys,
            host_key=settings.manhole_host_key,
        ).setServiceParent(root)
    return root
