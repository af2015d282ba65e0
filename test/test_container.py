"""The container recipe without a Docker engine (none runs here): the files it copies
exist, the compose demo's configuration is valid, and the entrypoint gives maglevd the
capabilities the container has, as a non-root user."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import yaml

from maglev.config import load_config_file

from .helpers import ROOT

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
NET_RAW, SYS_ADMIN = 1 << 13, 1 << 21


def test_dockerfile_copies_what_exists() -> None:
    text = (ROOT / "Dockerfile").read_text()
    sources = re.findall(r"^COPY (?!--from)(\S+) ", text, re.M)
    assert sources, "the Dockerfile copies files"
    for src in sources:
        assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"
    assert "USER root" not in text and "maglevd" in text


def test_compose_demo_is_consistent() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"vppemu", "maglevd", "frontend", "backend"}
    cfg = load_config_file(str(ROOT / "docker" / "demo.yaml"))
    backend_ip = services["backend"]["networks"]["default"]["ipv4_address"]
    assert {str(b.address) for b in cfg.backends.values()} == {backend_ip}
    assert "NET_RAW" in services["maglevd"]["cap_add"]
    # no VPP API definitions to mount: the package carries the ones both sides speak
    assert not any("vpp-api" in str(v) for s in services.values() for v in s.get("volumes", []))


@pytest.fixture
def maglevd_user() -> Iterator[None]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("capsh") is None:
        pytest.skip("needs root, setpriv (util-linux) and capsh (libcap2-bin)")
    made = subprocess.run(["getent", "passwd", "maglevd"], capture_output=True).returncode != 0
    if made:
        subprocess.run(["useradd", "--system", "--no-create-home", "maglevd"], check=True)
    yield
    if made:
        subprocess.run(["userdel", "maglevd"], check=True)


def status_in_container(*drop: str) -> dict[str, str]:
    """/proc/self/status of a command started through the entrypoint, with ``drop`` out of the bounding set."""
    inner = f"{ENTRYPOINT} sh -c 'id -un; cat /proc/self/status'"
    cmd = ["capsh", f"--drop={','.join(drop)}", "--", "-c", inner] if drop else ["sh", "-c", inner]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    fields = dict(line.split(":\t", 1) for line in lines[1:] if ":\t" in line)
    fields["user"] = lines[0]
    return fields


@pytest.mark.parametrize(
    ("drop", "ambient"),
    [
        ((), NET_RAW | SYS_ADMIN),
        (("cap_sys_admin",), NET_RAW),
        (("cap_net_raw", "cap_sys_admin"), 0),
    ],
)
def test_entrypoint_hands_over_only_the_containers_capabilities(
    maglevd_user: None, drop: tuple[str, ...], ambient: int
) -> None:
    st = status_in_container(*drop)
    assert st["user"] == "maglevd", "never root"
    assert int(st["CapAmb"], 16) == ambient
    assert int(st["CapEff"], 16) == ambient
    assert int(st["CapBnd"], 16) == ambient, "nothing else can be regained"


def test_local_state_stays_out_of_the_build_context_and_git() -> None:
    ignored = [x for x in (ROOT / ".dockerignore").read_text().splitlines() if x and not x.startswith("#")]
    for local in (".venv", ".demo", "build", "dist", "*.so"):
        assert local in ignored, f".dockerignore should leave out {local}"
    assert ".git" not in ignored, "the image records the commit it was built from"
    for src in re.findall(r"^COPY (?!--from)(\S+) ", (ROOT / "Dockerfile").read_text(), re.M):
        assert not any(fnmatch.fnmatch(src, pattern) for pattern in ignored), f"{src} is copied but ignored"
    assert "/.demo/" in (ROOT / ".gitignore").read_text().splitlines()
