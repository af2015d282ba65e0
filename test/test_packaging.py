"""The Debian packages, for real: build both, lintian, install, run, verify the units, purge.

Needs root and the build tools (make install-deps as root installs them) and PyPI for the
build's virtual environment. It refuses to touch a machine where vpp-maglev is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import ROOT

pytestmark = pytest.mark.slow

TOOLS = ("dpkg-buildpackage", "dh_virtualenv", "lintian", "apt-get", "systemd-analyze")
UNITS = ("/lib/systemd/system/vpp-maglev.service", "/lib/systemd/system/vpp-maglev-frontend.service")


def installed(package: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return "ok installed" in r.stdout


def run(*cmd: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGLEV_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # the installed programs, not .venv's
    env["DEBIAN_FRONTEND"] = "noninteractive"
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to install and purge the packages")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make install-deps as root)")
    if installed("vpp-maglev") or installed("vpp-maglevd"):
        pytest.skip("vpp-maglev is installed on this machine: not replacing or purging it")
    out = tmp_path_factory.mktemp("debs")
    r = run(str(ROOT / "debian" / "build-debs"), str(out), timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    yield out
    run("apt-get", "purge", "-y", "vpp-maglevd", "vpp-maglev")


def test_lintian_finds_no_errors(debs: Path) -> None:
    (changes,) = debs.glob("*.changes")
    r = run("lintian", "--fail-on", "error", str(changes))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "\nE: " not in "\n" + r.stdout


def assert_emulator_serves_without_vpp(tmp: Path) -> None:
    """The packaged emulator starts on this VPP-less machine: the package carries the API definitions."""
    assert not Path("/usr/share/vpp/api").exists()
    cmd = ["timeout", "60", "maglev-vppemu", "--api-socket", str(tmp / "api.sock"), "--stats-socket", str(tmp / "s")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGLEV_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the emulator's first line is its ready line, or why it failed
        assert '"vppemu-ready"' in first, first + proc.stdout.read()
    finally:
        proc.terminate()
        proc.wait(30)


def test_install_run_and_purge(debs: Path, tmp_path: Path) -> None:
    group_made = run("getent", "group", "vpp").returncode != 0
    if group_made:  # a VPP host has this group: maglevd joins it for the API socket
        assert run("groupadd", "--system", "vpp").returncode == 0
    try:
        r = run("apt-get", "install", "-y", *(str(p) for p in sorted(debs.glob("*.deb"))))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        check = run("maglevd", "--check", "/etc/vpp-maglev/maglev.yaml")
        assert check.returncode == 0 and ": ok (" in check.stdout, check.stdout + check.stderr
        version = run("maglevd", "--version")
        assert version.returncode == 0 and version.stdout.startswith("maglevd 0.1.0 (commit ")
        assert "unknown" not in version.stdout, "the package records the commit it was built from"
        assert run("maglevc", "--help").returncode == 0
        assert run("maglevt", "--help").returncode == 0
        assert run("maglevd-frontend", "--version").stdout.startswith("maglevd-frontend 0.1.0")
        assert run("maglev-vppemu", "--help").returncode == 0
        assert_emulator_serves_without_vpp(tmp_path)
        assert "vpp" in run("id", "-nG", "maglevd").stdout.split()
        assert run("systemctl", "is-enabled", "vpp-maglev.service").stdout.strip() == "enabled"
        assert run("systemctl", "is-enabled", "vpp-maglev-frontend.service").stdout.strip() == "disabled"
        verify = run("systemd-analyze", "verify", *UNITS)
        assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
        assert oct(Path("/etc/default/vpp-maglev").stat().st_mode & 0o777) == "0o600"
        assert Path("/var/lib/vpp-maglev").owner() == "maglevd"
        r = run("apt-get", "purge", "-y", "vpp-maglevd", "vpp-maglev")
        assert r.returncode == 0, r.stderr
        assert run("getent", "passwd", "maglevd").returncode != 0, "the user goes with a purge"
        for gone in ("/usr/lib/vpp-maglev", "/var/lib/vpp-maglev", "/etc/vpp-maglev", "/etc/default/vpp-maglev"):
            assert not Path(gone).exists(), gone
    finally:
        if group_made:
            run("groupdel", "vpp")


SECURITY_TARGET = 4.0


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (package systemd)")
@pytest.mark.parametrize("unit", ["vpp-maglev", "vpp-maglev-frontend"])
def test_units_are_hardened(unit: str, tmp_path: Path) -> None:
    # --offline needs the file under the unit's own name
    path = tmp_path / f"{unit}.service"
    path.write_text((ROOT / "debian" / f"vpp-maglevd.{unit}.service").read_text())
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(path)], capture_output=True, text=True, timeout=60
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
    assert found is not None, r.stdout + r.stderr
    assert float(found.group(1)) <= SECURITY_TARGET, r.stdout


def test_units_keep_what_the_probes_need() -> None:
    """ICMP needs CAP_NET_RAW, netns probes setns() (CAP_SYS_ADMIN, net namespaces only); the
    frontend needs nothing. Each capability is explained where it is granted."""
    daemon = (ROOT / "debian" / "vpp-maglevd.vpp-maglev.service").read_text()
    assert "CapabilityBoundingSet=CAP_NET_RAW CAP_SYS_ADMIN" in daemon
    assert "RestrictNamespaces=net" in daemon
    assert "operation not permitted" in daemon and "healthchecker.netns" in daemon
    frontend = (ROOT / "debian" / "vpp-maglevd.vpp-maglev-frontend.service").read_text()
    assert "\nCapabilityBoundingSet=\n" in frontend
