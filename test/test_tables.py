"""Weight fidelity, the fitted weight scale and the table VPP holds, pure and on the emulator."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest
import pytest_twisted

from maglev import lbtable
from maglev.config import load_config
from maglev.dataplane.desired import IPAddress, VipKey
from maglev.dataplane.plan import ObservedAS, ObservedVip
from maglev.dataplane.tables import fidelity_warnings, model_mismatches, observed_table, weight_scale
from maglev.lbtable import bucket_counts, fit_scale, ip46, programmed_weight, share_error
from maglev.vppemu.server import Emulator

from .test_lbsync import Harness


def pool(weights: list[int]) -> tuple[lbtable.Entry, ...]:
    return tuple((ip46(bytes([10, 0, i // 250, 1 + i % 250])), w) for i, w in enumerate(weights))


def error_at(weights: list[int], length: int, scale: int) -> float:
    entries = pool(weights)
    programmed = [(a, programmed_weight(w, scale)) for a, w in entries]
    return share_error(weights, bucket_counts(programmed, length))


FIT_CASES = [
    # (weights, length, scale wanted or None for "below 100", worst error as programmed at most)
    ([100, 100, 100, 100], 1024, 100, 0.001),  # equal weights: nothing to fix
    ([100, 100, 50], 1024, 100, 0.005),  # 39.8/39.8/20.3: within half a point as it is
    ([100] * 100, 65536, 100, 0.0001),
    ([100] * 10 + [50] * 10, 1024, None, 0.005),  # §9: 5.2/4.9 unscaled, 1.6 points off
    ([100] * 20 + [10], 1024, 100, 0.0051),  # §9: the light one gets 1.0% for 0.5%: half a point, let be
    ([100, 50], 1024, None, 0.005),  # 65.8/34.2 unscaled
]


@pytest.mark.parametrize(("weights", "length", "scale", "worst"), FIT_CASES)
def test_fit_scale(weights: list[int], length: int, scale: int | None, worst: float) -> None:
    got = fit_scale(pool(weights), length)
    if scale is None:
        assert got < 100
        assert error_at(weights, length, 100) > 0.005  # the case needs the fix
    else:
        assert got == scale
    assert error_at(weights, length, got) <= worst
    # the chosen scale is the largest that meets the target: resolution is kept for later changes
    if got < 100:
        assert error_at(weights, length, got + 1) > lbtable.FIT_TARGET or got + 1 > 100


def test_programmed_weight_never_takes_an_as_out() -> None:
    assert [programmed_weight(w, 10) for w in (0, 1, 4, 5, 15, 100)] == [0, 1, 1, 1, 2, 10]
    assert programmed_weight(37, 100) == 37


def test_where_no_scale_helps_the_closest_is_taken() -> None:
    # 600 backends on 1024 buckets: most get one bucket, some two, whatever the weights.
    weights = [100 if i % 2 else 1 for i in range(600)]
    s = fit_scale(pool(weights), 1024)
    errs = {x: error_at(weights, 1024, x) for x in range(1, 101)}
    assert errs[s] == min(errs.values())


CONFIG = """\
maglev:
  vpp:
    lb: {ipv4-src-address: 192.0.2.254, sync-interval: 1h, startup-min-delay: 0s, startup-max-delay: 0s}
  healthchecks: {h: {type: tcp, port: 80}}
  backends:
BACKENDS
  frontends:
    big:
      address: 198.51.100.7
      port: 80
      FIT
      pools:
        - name: p
          backends:
MEMBERS
"""


def config_text(fit: bool, weights: list[int], length: int = 1024) -> str:
    backends = "\n".join(f"    b{i}: {{address: 10.0.0.{i + 1}, healthcheck: h}}" for i in range(len(weights)))
    members = "\n".join(f"            b{i}: {{weight: {w}}}" for i, w in enumerate(weights))
    fit_line = f"fit-weights: {'true' if fit else 'false'}\n      new-flows-table-length: {length}"
    return CONFIG.replace("BACKENDS", backends).replace("MEMBERS", members).replace("FIT", fit_line)


SKEWED = [100] * 10 + [50] * 10


def test_fidelity_warnings_name_the_pool_and_a_length_that_would_do() -> None:
    off = fidelity_warnings(load_config(config_text(False, SKEWED)))
    assert len(off) == 1
    w = off[0]
    assert (w.frontend, w.pool, w.length, w.honouring_length) == ("big", "p", 1024, 2048)
    assert 0.015 < w.error < 0.017
    assert "frontend big pool p" in str(w) and "new-flows-table-length 2048 would" in str(w)
    assert fidelity_warnings(load_config(config_text(True, SKEWED))) == []  # fitted: honoured
    assert fidelity_warnings(load_config(config_text(False, [100, 100]))) == []


def test_a_kept_verdict_serves_only_the_same_pool_at_the_same_length() -> None:
    skewed = load_config(config_text(False, SKEWED))
    assert len(fidelity_warnings(skewed)) == 1
    assert len(fidelity_warnings(load_config(config_text(False, SKEWED)))) == 1  # a new copy: the kept verdict
    assert fidelity_warnings(load_config(config_text(False, SKEWED, length=2048))) == []  # longer: honoured
    assert len(fidelity_warnings(skewed)) == 1  # and back
    assert fidelity_warnings(load_config(config_text(False, [100] * 10 + [99] * 10))) == []  # other weights


def test_weight_scale_comes_from_the_config_alone() -> None:
    cfg = load_config(config_text(True, SKEWED))
    fe = cfg.frontends["big"]
    assert weight_scale(fe, cfg, 0) == fit_scale(pool(SKEWED), 1024) < 100
    assert weight_scale(load_config(config_text(False, SKEWED)).frontends["big"], cfg, 0) == 100


def emulator_shares(emu: Emulator) -> dict[str, int]:
    with emu.lock:
        vip = next(v for v in emu.lb.live_vips() if not v.deleted)
        emu.lb.refresh(vip)
        return {lbtable.show_address(a.address): a.buckets for a in emu.lb.ases_of(vip) if a.used}


def emulator_digest(emu: Emulator) -> str:
    owners = emu.new_flow_table("198.51.100.7/32", 6, 80)
    addresses = tuple(sorted({ip46(ipaddress.ip_address(o).packed) for o in owners if o}))
    index = {a: i for i, a in enumerate(addresses)}
    buckets = tuple(index[ip46(ipaddress.ip_address(o).packed)] if o else -1 for o in owners)
    return lbtable.Table(len(owners), addresses, (1,) * len(addresses), buckets).digest()


def skewed(emu: Emulator, fit: bool) -> Harness:
    """LbSync on the emulator with SKEWED's pool, every backend up."""
    config = load_config(config_text(fit, SKEWED))
    return Harness(emu.api_socket, str(emu.stats_socket), config, {f"b{i}": "up" for i in range(len(SKEWED))})


@pytest_twisted.async_yield_fixture
async def started(emu: Emulator, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    h = skewed(emu, bool(request.param))
    await h.start()
    yield h
    await h.stop()


@pytest.mark.parametrize("started", [True, False], indirect=True, ids=["fit", "as-configured"])
@pytest_twisted.ensureDeferred
async def test_the_table_vpp_holds(emu: Emulator, started: Harness) -> None:
    """What maglevd says of the table equals the emulator's table, bucket for bucket; with
    fit-weights the weights are honoured, without they are not (master); 26.06 has equal shares."""
    fit = started.config.frontends["big"].fit_weights
    view = started.lbsync.view
    table = view.table("big")
    assert table is not None
    got = emulator_shares(emu)
    assert {str(s.address): s.buckets for s in table.shares} == got
    assert table.digest == emulator_digest(emu)
    asked = {f"10.0.0.{i + 1}": w for i, w in enumerate(SKEWED)}
    real_error = max(abs(got[a] / 1024 - w / sum(SKEWED)) for a, w in asked.items())
    assert table.error == pytest.approx(real_error)
    if not emu.lb.weights:
        assert not table.weights
        assert sorted(set(got.values())) == [51, 52]  # 1024 / 20 each, whatever the weights
    elif fit:
        assert real_error <= lbtable.FIT_TARGET
        vpp = {lbtable.show_address(a.address): a.weight for a in emu.lb.ases}  # type: ignore[union-attr]
        assert vpp["10.0.0.1"] < 100 and vpp["10.0.0.1"] == 2 * vpp["10.0.0.11"]
    else:
        assert real_error > 0.015
    # a transition: the table is known again at once (from what VPP holds, no read-back wait)
    await started.transition("b0", "down")
    after = view.table("big")
    assert after is not None and after.digest != table.digest
    held = {a: n for a, n in emulator_shares(emu).items() if n}
    assert {str(s.address): s.buckets for s in after.shares if s.buckets} == held
    assert "10.0.0.1" not in held
    assert after.digest == emulator_digest(emu)


def test_a_vpp_that_disagrees_with_the_model_is_named() -> None:
    key = VipKey(ipaddress.IPv4Address("198.51.100.7"), 6, 80)
    a, b = ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv4Address("10.0.0.2")
    ases: dict[IPAddress, ObservedAS] = {a: ObservedAS(a, 100, True, 512), b: ObservedAS(b, 100, True, 512)}
    o = ObservedVip(key, None, False, 1024, ases)
    o.table = observed_table(o, True)
    assert model_mismatches(o) == []
    ases[b] = ObservedAS(b, 100, True, 500)
    assert model_mismatches(o) == [(b, 500, 512)]
    assert model_mismatches(ObservedVip(key, None, False, None, ases)) == []  # no length: nothing to say
