"""How maglevc prints the API's answers: one function per kind of answer."""

from __future__ import annotations

from typing import Any

from ..ages import format_age
from .out import Out, age, ago, left


def frontend(out: Out, f: Any) -> None:
    out.line(f"{out.label('frontend', 10)} {f.name}  {out.state(f.state)}")
    out.kv("  vip", f"{f.address} {f.protocol} port {f.port} encap {f.encap}")
    flags = [x for x, on in (("src-ip-sticky", f.src_ip_sticky), ("flush-on-down", f.flush_on_down)) if on]
    out.kv("  options", f"table {f.new_flows_table_length}" + (", " + ", ".join(flags) if flags else ""))
    if f.state_detail:
        out.kv("  state", f.state_detail)
    if f.description:
        out.kv("  description", f.description)
    out.kv("  table", table_summary(f.table))
    shares = {s.address: s for s in f.table.shares} if f.table.known else {}
    for pool in f.pools:
        out.line(f"  {out.label('pool', 6)} {pool.name}{' (active)' if pool.active else ''}")
        out.line(
            f"    {'backend':<16} {'state':<9} {'weight':>6} {'effective':>9} {'vpp':>4} {'buckets':>7} "
            f"{'share':>6} {'asks':>6}  address"
        )
        for b in pool.backends:
            buckets = "-" if b.buckets < 0 else str(b.buckets)
            s = shares.get(b.address)
            share, asks = (_pct(s.bucket_share), _pct(s.weight_share)) if s is not None else ("-", "-")
            vpp = "-" if b.vpp_weight < 0 else str(b.vpp_weight)
            marker = " [flush]" if b.flush and b.effective_weight == 0 else ""
            if b.slow_start_duration:
                marker += f" [slow start {b.slow_start_elapsed}/{b.slow_start_duration:g} s]"
            if b.weight_override:
                ends = f" for {left(b.weight_override_seconds_left)}" if b.weight_override_seconds_left else ""
                marker += f" [operator weight{ends}]"
            out.line(
                f"    {b.name:<16} {out.state(b.state, 9)} {b.weight:>6} {b.effective_weight:>9} {vpp:>4} "
                f"{buckets:>7} {share:>6} {asks:>6}  {b.address}{marker}"
            )
    for d in f.draining:
        who = f"{d.backend}, " if d.backend else ""
        out.line(f"  {out.state('draining', 9)} {d.address} ({who}{d.why}): {d.seconds_left:.0f} s left, weight 0")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def table_summary(t: Any) -> str:
    """The VIP's new-flow table in one line: digest, fidelity, scale."""
    if not t.known:
        return "not in VPP (or not connected)"
    if not t.weights:
        fidelity = f"VPP has no weights: every AS an equal share (off by up to {100 * t.weight_error:.1f} points)"
    else:
        fidelity = f"weights honoured within {100 * t.weight_error:.1f} points"
        if t.weight_error > 0.01:
            fidelity = f"weights NOT honoured: worst backend off by {100 * t.weight_error:.1f} points"
        if t.weight_scale != 100:
            fidelity += f", given to VPP at {t.weight_scale}% (fit-weights)"
    return f"{t.length} buckets, digest {t.digest}, {fidelity}"


def preview(out: Out, r: Any) -> None:
    """PreviewChange's answer: per VIP, what moves, what is lost."""
    for note in r.notes:
        out.line(f"note: {note}")
    if not r.vips:
        out.line("no VIP changes: no bucket moves, no flow is lost")
    for v in r.vips:
        out.line(f"{out.label('frontend', 10)} {v.frontend}  VIP {v.vip}")
        if v.recreated:
            out.line(
                f"  {out.state('RECREATED', 9)} {v.recreated}: VPP deletes the VIP and creates it again, "
                "EVERY ESTABLISHED FLOW OF IT IS LOST"
            )
        if v.created:
            out.kv("  created", f"new VIP, {v.length} buckets")
        elif v.removed:
            when = f"after a {v.removal_in:.0f} s drain" if v.removal_in else "at once (established flows lost)"
            out.kv("  removed", f"the VIP goes {when}")
        else:
            out.kv(
                "  buckets",
                f"{v.moved} of {v.length} change owner ({100 * v.moved_share:.1f}%, the fewest possible {v.minimum}): "
                "new flows of those buckets go to another AS, established flows stay",
            )
        for m in v.moves:
            out.line(f"    {m.buckets:>7}  {m.from_as or 'no server'} -> {m.to_as or 'no server'}")
        for a in v.drained:
            out.kv("  drain", f"{a}: weight 0, established flows stay")
        for a in v.flushed:
            out.kv("  flush", f"{a}: established flows are dropped")
        if v.before or v.after:
            before = {s.address: s for s in v.before}
            after = {s.address: s for s in v.after}
            out.line(f"    {'AS':<28} {'before':>7} {'after':>7} {'asks':>6}")
            for addr in sorted({*before, *after}):
                b, a = before.get(addr), after.get(addr)
                asks = _pct(a.weight_share) if a is not None else "-"
                out.line(
                    f"    {addr:<28} {_pct(b.bucket_share) if b else '-':>7} {_pct(a.bucket_share) if a else '-':>7} "
                    f"{asks:>6}"
                )


def draining_vip(out: Out, d: Any) -> None:
    out.line(
        f"{out.label('frontend', 10)} {d.frontend}  {out.state('draining')}: removed from the configuration, "
        f"VIP {d.address} {d.protocol} port {d.port} deleted in {d.seconds_left:.0f} s"
    )


def healthcheck(out: Out, h: Any) -> None:
    port = f" port {h.port}" if h.port else ""
    out.line(f"{out.label('healthcheck', 12)} {h.name}: {h.type}{port}")
    out.kv(
        "  intervals",
        f"{h.interval:g}s, fast {h.fast_interval:g}s, down {h.down_interval:g}s, timeout {h.timeout:g}s",
    )
    out.kv("  rise/fall", f"{h.rise}/{h.fall}")
    for k, v in sorted(h.params.items()):
        out.kv(f"  {k}", v)
    out.kv("  backends", ", ".join(h.backends) or "-")


def backend(out: Out, b: Any) -> None:
    out.kv("backend", b.name)
    out.kv("address", b.address)
    out.kv(
        "state",
        f"{out.state(b.state)} for {age(b.state_since)} (counter {b.counter}, rise {b.rise}, fall {b.fall})",
    )
    out.kv("enabled", str(b.enabled).lower())
    if b.suppressed:
        out.kv("dampening", f"suppressed (penalty {b.flap_penalty:.0f}, reuse in {left(b.reuse_in_seconds)})")
    elif b.flap_penalty:
        out.kv("dampening", f"penalty {b.flap_penalty:.0f}")
    if b.override:
        ends = f"ends in {left(b.override_seconds_left)}" if b.override_seconds_left else "until changed"
        out.kv("override", f"{b.state} by an operator, {ends}")
    if b.reported:
        out.kv("reported", f"{b.reported} (by its {', '.join(b.reported_by)}; the dataplane follows it)")
    out.kv("healthcheck", b.healthcheck)
    if b.last_probe.code:
        lp = b.last_probe
        out.kv("last probe", f"{lp.code} {lp.detail} ({lp.duration * 1000:.1f} ms, {ago(lp.time)})")
    down = format_age(b.downtime_seconds) if b.downtime_seconds >= 1 else "0s"
    out.kv("checks", f"{b.checks} ({b.failed_checks} failed), {b.downs} times down, {down} down in all")
    out.kv("frontends", ", ".join(b.frontends) or "-")
    for t in b.transitions:
        out.kv("transition", f"{ago(t.time):>12}  {getattr(t, 'from')} -> {t.to}  {t.code} {t.detail}")


def vpp_lb_state(out: Out, s: Any) -> None:
    c = s.conf
    out.kv(
        "lb conf",
        f"ip4-src {c.ip4_src_address} ip6-src {c.ip6_src_address} "
        f"buckets {c.sticky_buckets_per_core} timeout {c.flow_timeout}s",
    )
    for v in s.vips:
        sticky = " src-ip-sticky" if v.src_ip_sticky else ""
        where = v.frontend or "not in config"
        out.line(f"{out.label('vip', 4)} {v.prefix} proto {v.protocol} port {v.port} {v.encap}{sticky} ({where})")
        for a in v.ases:
            weight = "-" if a.weight < 0 else str(a.weight)
            buckets = "-" if a.buckets < 0 else str(a.buckets)
            out.line(f"    {a.address:<28} weight {weight:>3}  buckets {buckets:>6}")


__all__ = ["backend", "frontend", "healthcheck", "vpp_lb_state"]
