"""DataplaneView: what other services may read of the VPP sync, read-only. Reactor thread.

Everything here was built on the reactor thread: the frontends' states and the weight
overrides (live read-only mappings of the model), the desired VIPs computed now, and the
observed dataplane as the last sync or read left it (copies handed over by the VPP
thread, never its own cache). The gRPC API, the web UI and the metrics read only this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..config import Frontend, Pool
from ..states import FrontendState
from .desired import DesiredVip, VipKey, active_pool
from .drain import DrainingAS, DrainingVip
from .errors import NotConnected
from .plan import ObservedVip
from .preview import PreviewInputs
from .tables import VipTable, vip_table
from .vppclient import VppInfo

if TYPE_CHECKING:
    from .model import DataplaneModel
    from .reports import Reports
    from .service import LbSync
    from .worker import SyncResult


class DataplaneView:
    def __init__(self, sync: LbSync, model: DataplaneModel) -> None:
        self._sync = sync
        self._model = model
        self.frontend_states: Mapping[str, FrontendState] = model.frontend_states
        self.overrides: Mapping[tuple[str, str, str], int] = model.overrides

    @property
    def enabled(self) -> bool:
        """Whether VPP integration is on (a non-empty --vpp-api-addr)."""
        return self._sync.enabled

    @property
    def connected(self) -> bool:
        return self._sync.connected

    @property
    def info(self) -> VppInfo | None:
        """The connected VPP (None while not connected)."""
        return self._sync.link.info if self._sync.connected else None

    def api_traffic(self) -> tuple[int, int]:
        """Binary-API messages sent to VPP and replies received, since start (the web UI's pulse)."""
        return self._sync.worker.traffic()

    @property
    def connection(self) -> str:
        """The connection's state, by name (see connection.py)."""
        return self._sync.link.state.value

    def require_connected(self) -> VppInfo:
        """The connected VPP; raises NotConnected saying why there is none."""
        if not self.enabled:
            raise NotConnected("VPP integration is disabled (--vpp-api-addr is empty)")
        info = self.info
        if info is None:
            raise NotConnected("VPP is not connected")
        return info

    def frontend_state(self, name: str) -> FrontendState:
        return self._model.frontend_states.get(name, FrontendState.UNKNOWN)

    def frontend_detail(self, name: str) -> str:
        """Why the frontend is in its state, where there is more to say (unsupported: why)."""
        why = self._model.unsupported.get(name)
        if why:
            return f"unsupported by this VPP: {why}"
        if self.frontend_states.get(name) is FrontendState.FAILING_OPEN:
            return "all-down (failing open): every backend is down, the last weights stay (on-all-down: keep)"
        return ""

    def isolation(self) -> tuple[bool, float, list[str]]:
        """The checker-isolation guard: (holding, share of backends down when it tripped, held backends)."""
        iso = self._model.isolation
        return iso.active, iso.fraction, sorted(iso.held)

    def desired(self, frontends: Iterable[str] | None = None) -> dict[str, DesiredVip]:
        return self._model.desired(frontends)

    def frontend_names(self) -> list[str]:
        """Every configured frontend, in the config's order."""
        return list(self._model.config.frontends)

    def backend_addresses(self) -> dict[str, str]:
        """Every configured backend's address, by name."""
        return {n: str(b.address) for n, b in self._model.config.backends.items()}

    def vip_names(self) -> dict[VipKey, str]:
        """Every configured VIP's key -> its frontend (from the config alone)."""
        return self._model.vip_names()

    def active_pool(self, frontend: str) -> int:
        """The pool VPP is given weights from, as the desired VIP picks it (the backends'
        own word included: a pool whose backends all say drain is passed over)."""
        m = self._model
        return active_pool(m.config.frontends[frontend], m.states, m.overrides, m.flaps.suppressed, m.reports.effective)

    def draining(self, frontend: str) -> list[DrainingAS]:
        """The frontend's ASes in their drain, by address."""
        return self._model.drains.draining_of(frontend)

    def draining_vips(self) -> list[DrainingVip]:
        return list(self._model.drains.vips.values())

    def ramping(self) -> Mapping[str, int]:
        """The backends in their slow start (whole seconds into it): what ``slow_start`` may find."""
        return MappingProxyType(self._model.ramps.elapsed)

    def slow_start(self, frontend: Frontend, pool: Pool, backend: str) -> tuple[int, float] | None:
        """(whole seconds into it, its length) for a pool member in its slow start, else None."""
        elapsed = self._model.ramps.elapsed.get(backend)
        b = self._model.config.backends.get(backend)
        if elapsed is None or b is None:
            return None
        duration = frontend.slow_start_of(pool, b)
        return (elapsed, duration) if 0 < duration and elapsed < duration else None

    def flap(self, backend: str) -> tuple[bool, float, float] | None:
        """(suppressed, penalty now, seconds to reuse) of a dampened backend with a penalty, else None."""
        m = self._model
        b = m.config.backends.get(backend)
        d = b.dampening if b is not None else None
        if d is None or backend not in m.flaps.merits:
            return None
        now = self.seconds()
        reuse = m.flaps.reuse_at(backend, d)
        return backend in m.flaps.suppressed, m.flaps.penalty(backend, now, d), max(0.0, (reuse or now) - now)

    def backends_dampened(self) -> list[str]:
        return [n for n, b in self._model.config.backends.items() if b.dampening is not None]

    @property
    def flapping(self) -> bool:
        return bool(self._model.flaps.merits)

    def seconds(self) -> float:
        """The clock drains are timed on (the reactor's)."""
        return self._sync.reactor.seconds()

    def observed(self, key: VipKey) -> ObservedVip | None:
        """The VIP as the last sync or read of VPP left it (None: not seen, or not connected)."""
        return self._sync.observed.get(key) if self._sync.connected else None

    def table(self, frontend: str, desired: DesiredVip | None = None) -> VipTable | None:
        """The frontend's new-flow table as VPP holds it, against the weights its config asks
        for now (None: not connected, or VPP does not hold the VIP or did not say its length)."""
        d = desired or self._model.desired([frontend]).get(frontend)
        info = self.info
        o = self.observed(d.key) if d is not None else None
        t = o.new_flow_table() if o is not None else None
        if d is None or o is None or t is None or info is None:
            return None
        return vip_table(d, o, t, info.weights)

    def what_if(self, change: Callable[[DataplaneModel, dict[str, str]], object]) -> PreviewInputs:
        """A preview's inputs: the VIPs now, and after ``change`` is made to a fork of the model
        (and to a copy of the backends' states); what VPP holds. Raises what ``change`` raises;
        nothing is changed here either way."""
        m = self._model
        states = dict(m.live_states)
        fork = m.fork(states)
        change(fork, states)
        now_vips, after = m.desired(), fork.desired()
        t = self.seconds()
        removed = [
            (d.frontend, now_vips.get(d.frontend, d.vip), d.left(t))
            for key, d in fork.drains.vips.items()
            if key not in m.drains.vips
        ]
        named = {r[0] for r in removed}
        removed += [(n, v, 0.0) for n, v in now_vips.items() if n not in after and n not in named]
        info = self.info
        observed = dict(self._sync.observed) if info is not None else None
        return PreviewInputs(now_vips, after, observed, info.weights if info else True, removed)

    @property
    def counters(self) -> Mapping[str, Mapping[str, int]]:
        """frontend -> kind -> packets, as last read from VPP's stats segment."""
        return self._sync.counters

    @property
    def reports(self) -> Reports:
        """What backends say of themselves (agents, exec dynamic weights): read, never change."""
        return self._model.reports

    @property
    def counter_rates(self) -> Mapping[str, Mapping[str, float]]:
        """frontend -> kind -> packets per second, between the last two reads."""
        return self._sync.counter_rates.rates

    @property
    def last_sync(self) -> SyncResult | None:
        return self._sync.last_sync


__all__ = ["DataplaneView"]
