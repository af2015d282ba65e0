"""The SSH manhole with a real OpenSSH client: keys only, loopback only."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from .helpers import MINIMAL, Daemon

pytestmark = pytest.mark.slow


class Session:
    """An interactive ssh client whose screen output is collected by a thread."""

    def __init__(self, port: int, key: Path) -> None:
        self.proc = subprocess.Popen(
            [
                "ssh", "-tt", "-p", str(port), "-i", str(key),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "PasswordAuthentication=no", "-o", "ConnectTimeout=10",
                "admin@127.0.0.1",
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.screen = b""
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        stdout: Any = self.proc.stdout
        while chunk := stdout.read1(4096):
            with self.changed:
                self.screen += chunk
                self.changed.notify_all()

    def wait_for(self, text: bytes, count: int = 1, timeout: float = 15.0) -> None:
        with self.changed:
            ok = self.changed.wait_for(lambda: self.screen.count(text) >= count, timeout)
        assert ok, f"{text!r} x{count} not seen: {self.screen!r}"

    def type(self, keys: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(keys)
        self.proc.stdin.flush()

    def close(self) -> tuple[int, str]:
        assert self.proc.stderr is not None
        try:
            code = self.proc.wait(15)
        finally:
            self.proc.kill()
        return code, self.proc.stderr.read().decode()


@pytest.mark.skipif(shutil.which("ssh") is None or shutil.which("ssh-keygen") is None, reason="needs OpenSSH client")
def test_ssh_manhole_accepts_listed_keys_only(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    for key in (good, bad):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = tmp_path / "authorized_keys"
    authorized.write_text("# operators\n" + (tmp_path / "good.pub").read_text())
    cfg = tmp_path / "maglev.yaml"
    cfg.write_text(MINIMAL)
    host_key = tmp_path / "state" / "host_key"
    d = Daemon(
        [
            "--config", str(cfg), "--metrics-addr", "",
            "--manhole-addr", "127.0.0.1:0",
            "--manhole-authorized-keys", str(authorized),
            "--manhole-host-key", str(host_key),
        ]
    )  # fmt: skip
    try:
        port = int(d.event("listening", service="manhole-ssh")["address"].rsplit(":", 1)[1])
        assert host_key.stat().st_mode & 0o777 == 0o600
        session = Session(port, good)
        session.wait_for(b">>> ", count=2)  # the console draws its prompt again after a terminal reset
        session.type(b"config.generation + 6000\r")
        session.wait_for(b"6001")
        session.type(b"\x04")  # Ctrl-D ends the session
        session.close()
        refused = Session(port, bad)
        code, err = refused.close()
        assert code == 255 and "Permission denied" in err, err
    finally:
        d.stop()
        d.kill()
