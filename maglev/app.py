"""The service tree and its wiring. No logic lives here.

    maglev (MaglevService)
    ├── config    ConfigService: the running Config, reload on SIGHUP
    ├── health    HealthService: one prober per backend, the state machines
    ├── vpp       LbSync: programs VPP's lb plugin from config + health (own thread)
    ├── grpc      GrpcService: the gRPC API (grpc.aio on the reactor's loop)
    ├── web       WebService: the Klein web UI (when --web-addr is set)
    ├── metrics   MetricsService: /metrics (when --metrics-addr is set)
    └── manhole   ManholeService (when --manhole-addr is set)

Later services (health, VPP sync, gRPC, web) join here, wired explicitly, and
register with the ConfigService for reloads in priority order.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.application.service import IService, MultiService

from . import __version__
from .api.local import LocalStub
from .api.service import GrpcService
from .api.servicer import MaglevServicer
from .bus import EventBus
from .configservice import ConfigService
from .dataplane.metrics import VppCollector, VppMetrics
from .dataplane.service import LbSync
from .events import ConfigLoaded
from .gcpolicy import freeze_long_lived
from .health.metrics import HealthCollector, HealthMetrics
from .health.service import HealthService
from .limits import raise_open_files
from .log import Logger, set_level
from .manhole import ManholeService
from .metrics import MaglevMetrics, MetricsService
from .options import describe
from .version import commit
from .web.service import WebService, local_name, make_web
from .web.source import DaemonSource


class MaglevService(MultiService):
    """The root: owns the bus and the config holder; children are siblings."""

    log = Logger()

    def __init__(self, bus: EventBus, config: ConfigService, metrics: MaglevMetrics) -> None:
        super().__init__()
        self.setName("maglev")
        self.bus = bus
        self.config = config
        self.metrics = metrics

    def startService(self) -> None:
        self.log.info("maglevd started", event="started", services=[s.name for s in self])
        super().startService()

    def stopService(self) -> Any:
        self.log.info("maglevd stopping", event="stopping")
        return super().stopService()


def build_service(options: Any, reactor: Any = None) -> IService:
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    set_level(options["log_level_obj"])
    log = Logger(namespace="maglev")
    log.info(
        "starting maglevd {version} (commit {commit})",
        event="starting",
        version=__version__,
        commit=commit(),
        settings=describe(options),
    )
    before, after = raise_open_files()
    log.info("open files limit {limit} (was {before})", event="open-files", limit=after, before=before)
    bus = EventBus()
    # After the start and after every reload, once that turn's work is done.
    bus.subscribe(ConfigLoaded, lambda e: reactor.callLater(0, freeze_long_lived))
    metrics = MaglevMetrics()
    metrics.watch(bus)
    config = ConfigService(options["config"], options["config_obj"], bus, reactor, handle_sighup=True)
    root = MaglevService(bus, config, metrics)
    config.setServiceParent(root)

    health = HealthService(config.config, bus, reactor)
    HealthMetrics(metrics.registry).watch(bus)
    metrics.registry.register(HealthCollector(health.view))
    health.setServiceParent(root)
    config.add_reconfigurable(health)

    vpp_metrics = VppMetrics(metrics.registry)
    lbsync = LbSync(
        config.config,
        bus,
        reactor,
        backend_states=health.view.states,
        api_addr=options["vpp-api-addr"].strip(),
        stats_addr=options["vpp-stats-addr"].strip(),
        api_dir=options["vpp_api_dir_obj"],
        api_counter=vpp_metrics.api,
        sync_counter=vpp_metrics.lbsync,
    )
    metrics.registry.register(VppCollector(lbsync.view))
    lbsync.setServiceParent(root)
    config.add_reconfigurable(lbsync)

    # The servicer also backs the web UI in-process, so it exists even without a gRPC listener.
    servicer = MaglevServicer(config, health, lbsync, bus, started=time.time())
    if options["grpc-addr_obj"] is not None:
        GrpcService(options["grpc-addr_obj"], servicer, options["reflection_on"]).setServiceParent(root)
    if options["web-addr_obj"] is not None:
        web = make_web(reactor, options["admin_credentials"])
        web.add_source(
            DaemonSource(local_name(), "local", LocalStub(servicer), web.on_event, web.on_status, remote=False)
        )
        WebService(web, options["web-addr_obj"], reactor).setServiceParent(root)

    MetricsService(metrics, options["metrics-addr_obj"], reactor).setServiceParent(root)
    if options["manhole_obj"] is not None:
        namespace: dict[str, Any] = {
            "maglev": root,
            "bus": bus,
            "config": config,
            "health": health,
            "vpp": lbsync,
            "reactor": reactor,
        }
        ManholeService(
            options["manhole_obj"],
            namespace,
            reactor,
            authorized_keys=options["manhole-authorized-keys"],
            host_key=options["manhole-host-key"],
        ).setServiceParent(root)
    return root
