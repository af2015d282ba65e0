"""The packaged VPP API definitions: up to date, faithful to VPP's, enough for both sides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import maglev.vppapi as vppapi
from maglev.vppapi import PACKAGED, find_api_dir, packaged_api_dir
from maglev.vppapi.generate import generate, main, render
from maglev.vppapi.messages import V2606_MISSING, ApiDefinitions
from maglev.vppemu.server import Emulator

from .emu import API_DIR

# What maglevd sends (besides what vpp_papi's connect and the emulator's table need).
CLIENT_SENDS = (
    "lb_conf", "lb_conf_get", "lb_add_del_vip_v2", "lb_add_del_as", "lb_add_del_as_v2", "lb_as_set_weight",
    "lb_flush_vip", "lb_vip_dump", "lb_as_dump", "lb_as_v2_dump", "show_version", "show_threads", "cli_inband",
    "control_ping", "memclnt_keepalive", "sockclnt_create", "sockclnt_delete", "ip_route_lookup",
)  # fmt: skip


def test_the_packaged_file_is_what_the_generator_makes_from_vpps_definitions() -> None:
    committed = json.loads(PACKAGED.read_text())
    assert PACKAGED.read_text() == render(generate([API_DIR], committed)), "run make vpp-api"
    assert main(["--from", str(API_DIR), "--check"]) == 0


def test_the_generator_names_a_missing_source_and_an_out_of_date_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--from", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out.json")]) == 2
    assert "nowhere" in capsys.readouterr().err
    stale = tmp_path / "definitions.json"
    stale.write_text(PACKAGED.read_text().replace('"crc": "0x', '"crc": "0x0', 1))
    assert main(["--from", str(API_DIR), "--out", str(stale), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    stale.write_text("{}\n")  # nothing to keep ip.api.json from, and ../shared has none
    assert main(["--from", str(API_DIR), "--out", str(stale), "--check"]) == 2
    assert "no source has core/ip.api.json" in capsys.readouterr().err


def test_packaged_messages_carry_vpps_names_crcs_and_fields() -> None:
    full = ApiDefinitions(API_DIR)
    packaged = ApiDefinitions(packaged_api_dir())
    assert set(CLIENT_SENDS) <= set(packaged.messages)
    for name, msg in packaged.messages.items():
        if name.startswith("ip_route_lookup"):
            continue  # not in ../shared (below)
        assert msg.crc == full.messages[name].crc, name
        assert msg.fields == full.messages[name].fields, name
        assert msg.size == full.messages[name].size, name
    for request in CLIENT_SENDS:
        reply = packaged.reply_of(request)
        assert reply is None or reply in packaged.messages, request
    # memclnt is whole, so VPP's numbering (sockclnt_create = 15) holds
    assert packaged.ids["sockclnt_create"] == 15
    # no comments or help texts, and nothing the project never sends
    doc = json.loads(PACKAGED.read_text())
    assert "comment" not in PACKAGED.read_text() and "vat_help" not in PACKAGED.read_text()
    assert "sw_interface_dump" not in packaged.messages and "log_dump" not in packaged.messages
    assert {f["path"] for f in doc["files"]} == {
        "core/memclnt.api.json", "core/vlib.api.json", "core/vpe.api.json", "core/ip.api.json", "plugins/lb.api.json",
    }  # fmt: skip
    # ip.api.json is not in ../shared: made by VPP's vppapigen from the same commit as the rest
    (ip,) = [f for f in doc["files"] if f["path"] == "core/ip.api.json"]
    commit = "b575ec2c56d"
    assert commit in ip["source"] and commit in (API_DIR / "README.md").read_text()
    assert [m["name"] for m in ip["messages"]] == ["ip_route_lookup", "ip_route_lookup_reply"]
    route = packaged.messages["ip_route_lookup_reply"]
    assert route.fields == ["_vl_msg_id", "context", "retval", "route"]


@pytest.mark.parametrize("flavour", ["master", "v26.06"])
def test_the_emulator_serves_everything_it_handles_from_the_packaged_definitions(tmp_path: Path, flavour: str) -> None:
    emu = Emulator(str(tmp_path / "api.sock"), None, str(packaged_api_dir()), flavour)
    handled = set(emu.handlers.table)
    missing = V2606_MISSING if flavour == "v26.06" else frozenset()
    assert handled - missing <= set(emu.api.ids)
    assert not (set(emu.api.ids) & missing)


def test_without_vpp_installed_the_packaged_definitions_are_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(vppapi, "INSTALLED", tmp_path / "no-vpp")
    found = find_api_dir(None)
    assert found == packaged_api_dir() and (found / "core" / "memclnt.api.json").is_file()
    installed = tmp_path / "vpp-api"
    (installed / "core").mkdir(parents=True)
    (installed / "core" / "memclnt.api.json").write_text((API_DIR / "core" / "memclnt.api.json").read_text())
    monkeypatch.setattr(vppapi, "INSTALLED", installed)
    assert find_api_dir(None) == installed, "VPP's own definitions win where VPP is installed"


def test_an_explicit_directory_without_definitions_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*--api-dir"):
        find_api_dir(str(tmp_path), "--api-dir")
