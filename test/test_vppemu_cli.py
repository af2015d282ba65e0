"""The emulator's lb CLI against real VPP's, verbatim (../shared/spec/vpp-cli/): the same
binary-API calls through the real vpp_papi client, then the same commands; only the dpo
numbers may differ."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from test.emu import client, emulator
from test.helpers import source_env
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


def test_without_api_definitions_the_hint_names_the_emulators_own_option(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "maglev.vppemu", "--api-dir", str(tmp_path), "--api-socket", str(tmp_path / "a.sock")],
        capture_output=True, text=True, env=source_env(), timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert f"no VPP API definitions (memclnt.api.json) in {tmp_path}; check --api-dir" in r.stderr
