"""The emulator's lb CLI against real VPP's, verbatim (../shared/spec/vpp-cli/): the same
binary-API calls through the real vpp_papi client, then the same commands; only the dpo
numbers may differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from test.emu import client, emulator
from test.vppcli import Call, Shown, steps, without_dpo


@pytest.mark.parametrize("flavour", ["master", "v26.06"])
def test_the_emulator_prints_what_real_vpp_printed(tmp_path: Path, flavour: str) -> None:
    compared = 0
    with emulator(tmp_path, flavour) as (emu, _), client(emu) as c:
        for step in steps(flavour):
            if isinstance(step, Call):
                reply = getattr(c.api, step.message)(**step.args)
                assert reply.retval == step.retval, f"{step.message}({step.args})"
            else:
                assert isinstance(step, Shown)
                got = c.api.cli_inband(cmd=step.command).reply
                assert without_dpo(got) == without_dpo(step.output), f"{flavour}: {step.command}"
                compared += 1
    assert compared == 4


@pytest.mark.parametrize("flavour", ["master", "v26.06"])
def test_one_dpo_per_next_hop(tmp_path: Path, flavour: str) -> None:
    """dpo numbers are the emulator's own, but like VPP's: the same AS address on two VIPs
    stacks on one DPO."""
    with emulator(tmp_path, flavour) as (emu, _), client(emu) as c:
        for step in steps(flavour):
            if isinstance(step, Call):
                getattr(c.api, step.message)(**step.args)
        text = c.api.cli_inband(cmd="show lb vips verbose").reply
    dpos = {line.split()[0]: line.split("dpo:")[1].split()[0] for line in text.splitlines() if "dpo:" in line}
    lines = [line for line in text.splitlines() if line.strip().startswith("127.0.0.11 ")]
    assert len(lines) == 2 and len({line.split("dpo:")[1].split()[0] for line in lines}) == 1
    assert len(set(dpos.values())) == len(dpos)
