"""PreviewChange (a mixin of MaglevServicer): what a weight, a backend action or a reload
would do to VPP's new-flow tables, without doing it. Reactor thread, as the rest of the
servicer; the fills run on a worker thread (a 65,536-bucket table takes tens of ms)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, NoReturn

import grpc

from ..config import Config, ConfigError, load_config
from ..dataplane.desired import DesiredVip
from ..dataplane.preview import PreviewInputs, VipChange, preview, shares, show
from ..lbtable import Table
from .gen.maglev.v1 import maglev_pb2 as pb
from .vpprpcs import awaited

if TYPE_CHECKING:
    from ..configservice import ConfigView
    from ..dataplane.model import DataplaneModel
    from ..dataplane.view import DataplaneView

# A backend action as the state it puts the backend in; resume and enable are previewed as
# the backend up (what they lead to once its checks pass; until then it stays at weight 0).
ACTION_STATES = {"pause": "paused", "disable": "disabled", "resume": "up", "enable": "up"}
MAX_CONFIG_TEXT = 16 << 20


class PreviewRpcs:
    dataplane: DataplaneView
    configs: ConfigView

    async def _abort(self, context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
        raise NotImplementedError

    async def PreviewChange(self, request: pb.PreviewRequest, context: grpc.aio.ServicerContext) -> pb.PreviewResponse:
        which = request.WhichOneof("change")
        notes: list[str] = []
        flushed: dict[str, list[str]] = {}  # frontend -> ASes an explicit flush drops the flows of
        if which == "set_weight":
            r = request.set_weight

            def change(m: DataplaneModel, states: dict[str, str]) -> object:
                return m.set_weight(r.frontend, r.pool, r.backend, r.weight, r.flush)

            address = self.dataplane.backend_addresses().get(r.backend)
            if r.flush and address is not None:
                flushed[r.frontend] = [address]
        elif which == "backend":
            name, action = request.backend.name, request.backend.action
            state = ACTION_STATES.get(action)
            if state is None:
                await self._abort(
                    context, grpc.StatusCode.INVALID_ARGUMENT,
                    f"action must be one of {', '.join(ACTION_STATES)}, got {action!r}",
                )  # fmt: skip
            if name not in self.dataplane.backend_addresses():
                await self._abort(context, grpc.StatusCode.NOT_FOUND, f"no such backend {name!r}")
            if action in ("resume", "enable"):
                notes.append(f"{name} is previewed as up: until its checks pass it stays at weight 0")

            def change(m: DataplaneModel, states: dict[str, str]) -> object:
                states[name] = state
                return None

        elif which == "reload":
            new = await self._config_of(request.reload.config_yaml, context)
            notes.append("backends new to the configuration join at weight 0 until their checks pass")
            seconds = self.dataplane.seconds()

            def change(m: DataplaneModel, states: dict[str, str]) -> object:
                return m.reconfigure(new, seconds)

        else:
            await self._abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "say what to preview: set_weight, backend or reload"
            )
        try:
            inputs = self.dataplane.what_if(change)
        except KeyError as e:
            await self._abort(context, grpc.StatusCode.NOT_FOUND, str(e.args[0]))
        except ValueError as e:
            await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(e))
        changes = await asyncio.to_thread(preview, *inputs)
        if inputs.observed is None:
            notes.append("not connected to VPP: 'before' is what maglevd would program now")
        return preview_response(changes, inputs, notes, flushed)

    async def _config_of(self, text: str, context: grpc.aio.ServicerContext) -> Config:
        """The configuration to preview a reload of: ``text``, else the file on disk."""
        try:
            if not text:
                cfg: Config = await awaited(self.configs.check())
                return cfg
            if len(text) > MAX_CONFIG_TEXT:
                await self._abort(
                    context, grpc.StatusCode.INVALID_ARGUMENT,
                    f"configuration text of {len(text)} bytes, more than {MAX_CONFIG_TEXT}",
                )  # fmt: skip
            return await asyncio.to_thread(load_config, text)
        except ConfigError as e:
            problems = "; ".join(str(p) for p in e.problems)
            await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"{e.kind.label} error: {problems}")


def _shares(msg: Any, t: Table | None, d: DesiredVip | None, weights: bool) -> None:
    if t is None:
        return
    for s in shares(t, d, weights):
        msg.add(
            address=show(s.address), backend=s.backend, buckets=s.buckets, bucket_share=s.bucket_share,
            weight_share=s.weight_share, vpp_weight=s.vpp_weight,
        )  # fmt: skip


def vip_preview(c: VipChange, inputs: PreviewInputs, flushed: list[str]) -> pb.VipPreview:
    """``flushed``: ASes of this VIP an explicit flush (SetWeight's) drops the flows of."""
    k = c.key
    v = pb.VipPreview(
        frontend=c.frontend, vip=str(k), length=c.length, moved=c.moved,
        moved_share=c.moved / c.length if c.length else 0.0, minimum=c.minimum, recreated=c.recreated,
        created=c.created, removed=c.after is None, removal_in=c.removal_in or 0.0,
        drained=[str(a) for a in c.drained],
        flushed=sorted({*(str(a) for a in c.flushed), *flushed}),
        digest_before=c.before.digest() if c.before else "", digest_after=c.after.digest() if c.after else "",
    )  # fmt: skip
    for (a, b), n in sorted(c.moves.items(), key=lambda kv: -kv[1]):
        v.moves.add(from_as=show(a) if a else "", to_as=show(b) if b else "", buckets=n)
    _shares(v.before, c.before, inputs.now.get(c.frontend), inputs.weights)
    _shares(v.after, c.after, inputs.after.get(c.frontend), inputs.weights)
    return v


def preview_response(
    changes: list[VipChange], inputs: PreviewInputs, notes: list[str], flushed: dict[str, list[str]]
) -> pb.PreviewResponse:
    r = pb.PreviewResponse(notes=notes, connected=inputs.observed is not None)
    for c in changes:
        r.vips.append(vip_preview(c, inputs, flushed.get(c.frontend, []) if c.after is not None else []))
    return r


__all__ = ["ACTION_STATES", "PreviewRpcs"]
