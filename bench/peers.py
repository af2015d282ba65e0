"""Our health checker beside HAProxy's and keepalived's, on the same backends.

    python bench/peers.py                                  # N = 100, 1000, 5000; tcp and http; 60 s each
    python bench/peers.py --sizes 1000 --types tcp --duration 20 --trials 20
    python bench/peers.py --sizes 1000,5000 --duration 20 --repeat 3 --no-detection   # medians
    python bench/peers.py --sizes 200,1000 --types https,https-full --repeat 3 --no-detection

Backends: one child process listening on N loopback addresses (127.2.x.y:8000). It
counts every connection attempt (each probe is one; counted as SYNs on a raw socket
with a BPF filter, because HAProxy's TCP checks reset before the handshake completes
and are never accepted), answers HTTP with 200, or 500 for a backend told to fail,
and notes when it sent each 500. ``https`` is HTTP over TLS (an RSA-2048 certificate,
TLS 1.3, session tickets on: a checker may resume), ``https-full`` the same with
resumption refused by the backends (no tickets: every handshake is a full one); the
backends count the handshakes they saw resumed, so the table says whether each checker
resumes.

Cost: each checker in turn (HAProxy ``check inter 1s rise 2 fall 3`` on every
server, no traffic; keepalived TCP_CHECK / HTTP_GET with ``delay_loop 1``; maglevd
with the same interval, rise and fall, the VPP emulator attached) runs for
--duration seconds after a warm-up. Printed per checker and N: probes/s the
backends received, CPU seconds per 1,000 probes (user+sys of the checker's process
tree, from /proc), RSS, and our ratio to each peer.

Detection, for each of --types: with 100 backends up, --trials of them are stopped,
one every 250 ms, each at a recorded instant: an HTTP backend starts answering 500, a
TCP backend closes its listener (probes are refused). For each checker: the time until
it reports the backend down (its log line), and for maglevd also until VPP (the
emulator) has the AS at weight 0. The floor is the instant of the fall-th failed probe
after the stop (the fall-th 500 sent; for TCP the fall-th SYN seen, refused at once);
the excess is detection minus that floor.
keepalived needs the kernel's IPVS; where that is missing it is skipped, saying so.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, this directory comes first on sys.path: bench/grpc.py must not shadow grpc.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

from bench.probes import listener  # noqa: E402
from maglev.limits import raise_open_files  # noqa: E402
from test.helpers import free_port  # noqa: E402

PORT = 8000
OK = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
FAIL = b"HTTP/1.0 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nfail\n"
INTERVAL, RISE, FALL = 1, 2, 3
TICK = os.sysconf("SC_CLK_TCK")


def address(i: int) -> str:
    return f"127.2.{i // 250}.{i % 250 + 1}"


TLS_KINDS = ("https", "https-full")


def tls_material(directory: Path) -> Path:
    """An RSA-2048 key and self-signed certificate, as one PEM file."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = directory / "backend.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return pem


# --- backends ---------------------------------------------------------------------------------
# Classic BPF for a raw IPPROTO_TCP socket: pass TCP SYNs (without ACK) to port PORT only.
SYN_FILTER = [
    (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf): IP header length
    (0x48, 0, 0, 2),  # ldh [x+2]: destination port
    (0x15, 0, 4, PORT),  # jeq PORT, else drop
    (0x50, 0, 0, 13),  # ldb [x+13]: TCP flags
    (0x54, 0, 0, 0x12),  # and SYN|ACK
    (0x15, 0, 1, 0x02),  # jeq SYN, else drop
    (0x06, 0, 0, 0xFFFF),  # accept
    (0x06, 0, 0, 0),  # drop
]


def syn_counter() -> socket.socket:
    """Sees every connection attempt, even a check that resets before completing the
    handshake (HAProxy's TCP checks do: the backend never accepts them)."""
    import ctypes
    import struct

    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    prog = b"".join(struct.pack("HBBI", *ins) for ins in SYN_FILTER)
    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HL", len(SYN_FILTER), ctypes.addressof(buf))
    raw.setsockopt(socket.SOL_SOCKET, 26, fprog)  # SO_ATTACH_FILTER
    raw.setblocking(False)
    return raw


def serve(n: int, conn: Any, kind: str = "tcp", pem: str | None = None) -> None:
    """Child process: N listeners and a SYN counter; commands on ``conn``: counts, tls
    (handshakes, resumed), fail i (answer 500 from now on), stop i (close the listener),
    sent, quit."""
    import ssl

    raise_open_files()
    tls: ssl.SSLContext | None = None
    if kind in TLS_KINDS:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(pem))
        tls.num_tickets = 0 if kind == "https-full" else 2
    handshakes = resumed = 0
    sel = selectors.DefaultSelector()
    raw = syn_counter()
    sel.register(raw, selectors.EVENT_READ, ("syn", -1))
    syns = 0
    listeners = [listener(address(i), PORT, 4096) for i in range(n)]
    for i, lsock in enumerate(listeners):
        sel.register(lsock, selectors.EVENT_READ, ("listen", i))
    stopped: set[int] = set()
    sel.register(conn, selectors.EVENT_READ, ("control", -1))
    failing: dict[int, float] = {}  # backend -> when it started failing
    fails_sent: dict[int, list[float]] = {}
    conn.send("ready")
    while True:
        for key, _ in sel.select():
            kind, i = key.data
            if kind == "control":
                cmd = conn.recv()
                if cmd == "counts":
                    conn.send(syns)
                elif cmd == "tls":
                    conn.send((handshakes, resumed))
                elif cmd[0] == "fail":
                    failing[cmd[1]] = time.time()
                    fails_sent[cmd[1]] = []
                    conn.send(failing[cmd[1]])
                elif cmd[0] == "stop":
                    # Closed: every probe from now on is refused (RST). The failures a
                    # checker saw are its SYNs from here on, timed as they arrive.
                    sel.unregister(listeners[cmd[1]])
                    listeners[cmd[1]].close()
                    stopped.add(cmd[1])
                    fails_sent[cmd[1]] = []
                    conn.send(time.time())
                elif cmd == "sent":
                    conn.send(fails_sent)
                elif cmd == "quit":
                    return
                continue
            if kind == "syn":
                while True:
                    try:
                        packet = raw.recv(128)
                    except BlockingIOError:
                        break
                    if packet[16] == 127 and packet[17] == 2:
                        syns += 1
                        i = packet[18] * 250 + packet[19] - 1
                        if i in stopped:
                            fails_sent[i].append(time.time())
                continue
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if kind == "listen":
                while True:
                    try:
                        c, _ = sock.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    if tls is not None:
                        try:
                            c = tls.wrap_socket(c, server_side=True, do_handshake_on_connect=False)
                        except (OSError, ssl.SSLError):  # the checker gave up (a timeout) and reset it
                            c.close()
                            continue
                        sel.register(c, selectors.EVENT_READ, ("handshake", i))
                    else:
                        sel.register(c, selectors.EVENT_READ, ("conn", i))
            elif kind == "handshake":
                assert isinstance(sock, ssl.SSLSocket)
                try:
                    sock.do_handshake()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                except (OSError, ssl.SSLError):
                    sel.unregister(sock)
                    sock.close()
                    continue
                handshakes += 1
                resumed += bool(sock.session_reused)
                sel.modify(sock, selectors.EVENT_READ, ("conn", i))
            else:
                try:
                    data = sock.recv(4096)
                    if data:
                        if i in failing:
                            sock.send(FAIL)
                            fails_sent[i].append(time.time())
                        else:
                            sock.send(OK)
                except ssl.SSLWantReadError:
                    continue
                except OSError:
                    pass
                sel.unregister(sock)
                sock.close()


class Backends:
    def __init__(self, n: int, kind: str = "tcp", pem: Path | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(n, child, kind, str(pem) if pem else None), daemon=True)
        self.proc.start()
        if not self.conn.poll(120) or self.conn.recv() != "ready":
            raise RuntimeError("backends did not start")
        self.lock = threading.Lock()

    def ask(self, *cmd: Any) -> Any:
        with self.lock:
            self.conn.send(cmd[0] if len(cmd) == 1 else cmd)
            return self.conn.recv()

    def close(self) -> None:
        with self.lock:
            self.conn.send("quit")  # no answer
        self.proc.join(10)


# --- process accounting ------------------------------------------------------------------------
def tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the process tree."""
    user = system = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / TICK, system / TICK


SWITCHES = ("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")


def switches(pid: int) -> int:
    """Context switches (voluntary and not) of every thread of the process tree: its wake-ups."""
    total = 0
    for p in tree(pid):
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                text = Path(f"/proc/{p}/task/{t}/status").read_text()
            except OSError:
                continue
            total += sum(int(line.split()[1]) for line in text.splitlines() if line.startswith(SWITCHES))
    return total


def rss_mib(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# --- checkers -------------------------------------------------------------------------------------
class Checker:
    """A checker process whose log lines are matched against ``down`` (a regex naming the backend)."""

    name = ""
    down: re.Pattern[str]

    def __init__(self, tmp: Path, n: int, kind: str) -> None:
        self.tmp, self.n, self.kind = tmp, n, kind
        self.proc: subprocess.Popen[str] | None = None
        self.events: dict[str, float] = {}  # backend index -> when it was reported down
        self.dataplane: dict[str, float] = {}
        self.lines: list[str] = []

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=self.tmp
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.time()
            self.lines.append(line)
            if len(self.lines) > 5000:
                del self.lines[:1000]
            self.seen(line, now)

    def seen(self, line: str, now: float) -> None:
        m = self.down.search(line)
        if m:
            self.events.setdefault(m.group(1), now)

    def settle(self, warmup: float) -> None:
        """Until the checker is in its steady state."""
        time.sleep(warmup)

    def unusable(self) -> str | None:
        if self.proc is not None and self.proc.poll() is not None:
            return f"{self.name} exited ({self.proc.returncode}): {''.join(self.lines[-5:]).strip()}"
        return None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class HAProxy(Checker):
    name = "haproxy"
    down = re.compile(r"Server be/b(\d+) is DOWN")

    def command(self) -> list[str]:
        lines = [
            "global", "  maxconn 4000", "  log stdout format raw local0 info",
            "defaults", f"  mode {'tcp' if self.kind == 'tcp' else 'http'}", "  log global",
            "  timeout connect 1s", "  timeout check 1s", "  timeout client 5s", "  timeout server 5s",
            # HAProxy will not start without a listener; no traffic ever reaches it
            "frontend fe", f"  bind 127.0.0.1:{free_port()}", "  default_backend be",
            "backend be",
        ]  # fmt: skip
        if self.kind != "tcp":
            lines += ["  option httpchk GET /healthz", "  http-check expect status 200"]
        # check-ssl: the checks over TLS, not verified (as maglevd's insecure: true); HAProxy
        # keeps the last session of each server and offers it on the next check.
        ssl = " check-ssl verify none" if self.kind in TLS_KINDS else ""
        lines.append(f"  default-server check{ssl} inter {INTERVAL}s rise {RISE} fall {FALL}")
        lines += [f"  server b{i} {address(i)}:{PORT}" for i in range(self.n)]
        cfg = self.tmp / "haproxy.cfg"
        cfg.write_text("\n".join(lines) + "\n")
        return ["haproxy", "-db", "-f", str(cfg)]


class Keepalived(Checker):
    name = "keepalived"
    down = re.compile(r"Removing service \[127\.2\.(\d+)\.(\d+)\]")

    def seen(self, line: str, now: float) -> None:
        m = self.down.search(line)
        if m:
            self.events.setdefault(str(int(m.group(1)) * 250 + int(m.group(2)) - 1), now)

    def command(self) -> list[str]:
        get = {"http": "HTTP_GET", "https": "SSL_GET", "https-full": "SSL_GET"}.get(self.kind)
        check = (
            f"{get} {{ url {{ path /healthz status_code 200 }} connect_timeout 1 "
            f"retry {FALL - 1} delay_before_retry {INTERVAL} }}"
            if get
            else f"TCP_CHECK {{ connect_timeout 1 retry {FALL - 1} delay_before_retry {INTERVAL} }}"
        )
        lines = ["global_defs { router_id bench }", "virtual_server 192.0.2.1 80 {", f"  delay_loop {INTERVAL}",
                 "  lb_algo rr", "  lb_kind NAT", "  protocol TCP"]  # fmt: skip
        lines += [f"  real_server {address(i)} {PORT} {{ weight 1 {check} }}" for i in range(self.n)]
        lines.append("}")
        cfg = self.tmp / "keepalived.conf"
        cfg.write_text("\n".join(lines) + "\n")
        return ["keepalived", "--dont-fork", "--log-console", "--check", "-f", str(cfg),
                "-p", str(self.tmp / "ka.pid"), "-c", str(self.tmp / "kac.pid")]  # fmt: skip

    def unusable(self) -> str | None:
        text = "".join(self.lines)
        if "Can't initialize ipvs" in text:
            why = re.search(r"IPVS: (.*)", text)
            return "keepalived's checker needs the kernel's IPVS" + (f" ({why.group(1).strip()})" if why else "")
        return super().unusable()


def logged_at(rec: dict[str, Any]) -> float:
    """A maglevd log record's own time (milliseconds)."""
    from datetime import datetime

    return datetime.fromisoformat(rec["time"].replace("Z", "+00:00")).timestamp()


class Maglevd(Checker):
    name = "maglevd"

    ups = 0

    def __init__(self, tmp: Path, n: int, kind: str) -> None:
        super().__init__(tmp, n, kind)
        # The same two events by the times maglevd logged them, not when this process read
        # them: the dataplane step without this process's own wake-ups (to the millisecond).
        self.logged: dict[str, float] = {}
        self.logged_dataplane: dict[str, float] = {}

    def settle(self, warmup: float) -> None:
        """Every backend up (a start with thousands takes a few seconds), then the warm-up."""
        deadline = time.monotonic() + 120
        while self.ups < self.n and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(warmup)

    def seen(self, line: str, now: float) -> None:
        if '"backend-transition"' in line:
            try:
                rec = json.loads(line.lstrip("\x1e"))
            except ValueError:
                return
            if rec.get("new") == "up":
                self.ups += 1
            elif rec.get("new") == "down":
                self.events.setdefault(rec["backend"][1:], now)
                self.logged.setdefault(rec["backend"][1:], logged_at(rec))
        elif '"lb-sync-as-weight"' in line:
            try:
                rec = json.loads(line.lstrip("\x1e"))
            except ValueError:
                return
            if rec.get("weight") == 0:
                a, b = rec["address"].split(".")[2:]
                self.dataplane.setdefault(str(int(a) * 250 + int(b) - 1), now)
                self.logged_dataplane.setdefault(str(int(a) * 250 + int(b) - 1), logged_at(rec))

    def command(self) -> list[str]:
        hc = "https" if self.kind in TLS_KINDS else self.kind
        params = "\n      params: {path: /healthz}" if hc != "tcp" else ""
        lines = [
            "maglev:",
            "  vpp:",
            "    lb: {ipv4-src-address: 192.0.2.254, startup-min-delay: 0s, startup-max-delay: 0s}",
            "  healthchecks:",
            f"    {hc}:",
            f"      type: {hc}",
            f"      port: {PORT}",
            f"      interval: {INTERVAL}s",
            f"      fast-interval: {INTERVAL}s",
            f"      down-interval: {INTERVAL}s",
            "      timeout: 1s",
            f"      rise: {RISE}",
            f"      fall: {FALL}{params}",
            "  backends:",
        ]
        lines += [f"    b{i}: {{address: {address(i)}, healthcheck: {hc}}}" for i in range(self.n)]
        lines.append("  frontends:")
        for f in range(0, self.n, 100):
            members = ", ".join(f"b{i}: {{}}" for i in range(f, min(f + 100, self.n)))
            lines += [
                f"    f{f // 100}:",
                f"      address: 198.18.{f // 100 // 250}.{f // 100 % 250 + 1}",
                "      protocol: tcp",
                "      port: 80",
                f"      pools: [{{name: primary, backends: {{{members}}}}}]",
            ]
        cfg = self.tmp / "maglev.yaml"
        cfg.write_text("\n".join(lines) + "\n")
        api, stats = self.tmp / "api.sock", self.tmp / "stats.sock"
        self.emulator = subprocess.Popen(
            [sys.executable, "-m", "maglev.vppemu", "--api-socket", str(api), "--stats-socket", str(stats)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not api.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # a bench, not a test: the emulator's socket appears
        return [sys.executable, "-m", "maglev", "--config", str(cfg), "--vpp-api-addr", str(api),
                "--vpp-stats-addr", str(stats), "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "",
                "--web-addr", ""]  # fmt: skip

    def stop(self) -> None:
        super().stop()
        self.emulator.terminate()
        self.emulator.wait(10)


CHECKERS: dict[str, type[Checker]] = {"haproxy": HAProxy, "keepalived": Keepalived, "maglevd": Maglevd}


def available(name: str) -> str | None:
    """None when the checker can run; installs a missing peer from Debian when root."""
    if name == "maglevd" or shutil.which(name) is not None:
        return None
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", name], env=env, check=False)
    if shutil.which(name) is None:
        return f"{name} is not installed and could not be (apt-get install {name} as root)"
    return None


# --- the two measurements ----------------------------------------------------------------------------
def cost(name: str, n: int, kind: str, duration: float, warmup: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        backends = Backends(n, kind, tls_material(Path(tmp)) if kind in TLS_KINDS else None)
        checker = CHECKERS[name](Path(tmp), n, kind)
        try:
            checker.start()
            checker.settle(warmup)
            why = checker.unusable()
            if why:
                return {"checker": name, "backends": n, "type": kind, "skipped": why}
            assert checker.proc is not None
            pid = checker.proc.pid
            (u0, s0), w0, t0 = cpu_times(pid), switches(pid), time.monotonic()
            p0, h0 = backends.ask("counts"), backends.ask("tls")
            time.sleep(duration)
            (u1, s1), w1, t1 = cpu_times(pid), switches(pid), time.monotonic()
            p1, h1 = backends.ask("counts"), backends.ask("tls")
            c0, c1 = u0 + s0, u1 + s1
            probes = p1 - p0
            if not probes:
                tail = "".join(checker.lines[-5:]).strip()
                return {"checker": name, "backends": n, "type": kind, "skipped": f"no probes arrived: {tail}"}
            return {
                "checker": name, "backends": n, "type": kind,
                "probes_per_s": round(probes / (t1 - t0), 1),
                "cpu_s_per_1000": round((c1 - c0) / probes * 1000, 4) if probes else None,
                "us_per_probe": round((c1 - c0) / probes * 1e6, 1) if probes else None,
                "cpu_share": round((c1 - c0) / (t1 - t0), 3),
                "sys_share": round((s1 - s0) / (t1 - t0), 3),
                "rss_mib": round(rss_mib(pid), 1),
                "switches_per_probe": round((w1 - w0) / probes, 2),
                **({"resumed_share": round((h1[1] - h0[1]) / max(1, h1[0] - h0[0]), 3)} if kind in TLS_KINDS else {}),
            }  # fmt: skip
        finally:
            checker.stop()
            backends.close()


def ratios(row: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Our CPU per probe over each peer's, in one run."""
    ours = row.get("maglevd")
    if ours is None:
        return {}
    # A peer whose CPU time did not move by one clock tick has no ratio.
    peers = {peer: r["us_per_probe"] for peer, r in row.items() if peer != "maglevd" and r["us_per_probe"]}
    return {peer: ours["us_per_probe"] / us for peer, us in peers.items()}


def summarize(n: int, kind: str, runs: list[dict[str, dict[str, Any]]]) -> None:
    """Medians over the runs: each checker's µs per probe (sys), and the per-run ratios."""
    for c in sorted({c for row in runs for c in row}):
        us = [row[c]["us_per_probe"] for row in runs if c in row]
        sys_us = [row[c]["sys_share"] / row[c]["probes_per_s"] * 1e6 for row in runs if c in row]
        print(
            f"{n:>5} {kind:<4} {c:<10} median of {len(us)}: {statistics.median(us):.1f} µs/probe "
            f"({statistics.median(sys_us):.1f} sys), range {min(us):.1f}-{max(us):.1f}",
            flush=True,
        )
    per_peer: dict[str, list[float]] = {}
    for row in runs:
        for peer, ratio in ratios(row).items():
            per_peer.setdefault(peer, []).append(ratio)
    for peer, values in per_peer.items():
        print(
            f"{n:>5} {kind:<4} maglevd/{peer}: median {statistics.median(values):.2f}x "
            f"(runs: {', '.join(f'{v:.2f}' for v in values)})",
            flush=True,
        )


def quantiles(values: list[float]) -> tuple[float, float]:
    v = sorted(values)
    return statistics.median(v), v[min(len(v) - 1, int(len(v) * 0.99))]


def detection(name: str, kind: str, trials: int, warmup: float) -> dict[str, Any]:
    """HTTP(S) backends start answering 500; TCP backends close their listener."""
    n = 100
    with tempfile.TemporaryDirectory() as tmp:
        backends = Backends(n, kind, tls_material(Path(tmp)) if kind in TLS_KINDS else None)
        checker = CHECKERS[name](Path(tmp), n, kind)
        try:
            checker.start()
            checker.settle(warmup)
            why = checker.unusable()
            if why:
                return {"checker": name, "type": kind, "skipped": why}
            stopped: dict[str, float] = {}
            for k in range(trials):
                stopped[str(k)] = backends.ask("stop" if kind == "tcp" else "fail", k)
                time.sleep(0.25)
            deadline = time.monotonic() + 10 * INTERVAL * FALL
            while time.monotonic() < deadline and not all(str(k) in checker.events for k in range(trials)):
                time.sleep(0.1)
            time.sleep(1.0)  # the dataplane follows detection
            sent = backends.ask("sent")
            detect: list[float] = []
            excess: list[float] = []
            dataplane: list[float] = []
            after: list[float] = []
            after_logged: list[float] = []
            for key, t_stop in stopped.items():
                seen = checker.events.get(key)
                fails = sent.get(int(key), [])
                if seen is None or len(fails) < FALL:
                    continue
                detect.append(seen - t_stop)
                excess.append(seen - fails[FALL - 1])
                if key in checker.dataplane:
                    dataplane.append(checker.dataplane[key] - t_stop)
                    after.append(checker.dataplane[key] - seen)
                if isinstance(checker, Maglevd) and key in checker.logged_dataplane:
                    after_logged.append(checker.logged_dataplane[key] - checker.logged[key])
            out: dict[str, Any] = {"checker": name, "type": kind, "trials": trials, "detected": len(detect)}
            for label, values in (("detect", detect), ("excess", excess), ("dataplane", dataplane),
                                  ("dataplane_after_detect", after),
                                  ("dataplane_after_detect_logged", after_logged)):  # fmt: skip
                if values:
                    p50, p99 = quantiles(values)
                    out[f"{label}_p50_ms"], out[f"{label}_p99_ms"] = round(p50 * 1000, 1), round(p99 * 1000, 1)
            return out
        finally:
            checker.stop()
            backends.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--types", default="tcp,http")
    ap.add_argument("--checkers", default="haproxy,keepalived,maglevd")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=1, help="runs per case (then medians are printed too)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of steady state before measuring")
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--no-detection", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    raise_open_files()
    names = [c for c in args.checkers.split(",") if c]
    skipped = {c: why for c in names if (why := available(c))}
    for c, why in skipped.items():
        print(f"skipping {c}: {why}", flush=True)
    results: list[dict[str, Any]] = []
    for n in (int(s) for s in args.sizes.split(",") if s):
        for kind in args.types.split(","):
            runs: list[dict[str, dict[str, Any]]] = []
            for _ in range(args.repeat):
                row: dict[str, dict[str, Any]] = {}
                for c in names:
                    if c in skipped:
                        continue
                    r = cost(c, n, kind, args.duration, args.warmup)
                    results.append(r)
                    if "skipped" in r:
                        print(f"{n:>5} {kind:<4} {c:<10} skipped: {r['skipped']}", flush=True)
                        skipped[c] = r["skipped"]
                        continue
                    row[c] = r
                    resumed = f"  {r['resumed_share']:.0%} resumed" if "resumed_share" in r else ""
                    print(
                        f"{n:>5} {kind:<4} {c:<10} {r['probes_per_s']:>8.1f} probes/s  "
                        f"{r['cpu_s_per_1000']:.4f} CPU s/1000 ({r['us_per_probe']:.1f} µs/probe)  "
                        f"{r['cpu_share']:.3f} core ({r['sys_share']:.3f} sys)  RSS {r['rss_mib']:.0f} MiB  "
                        f"{r['switches_per_probe']:.2f} switches/probe{resumed}",
                        flush=True,
                    )
                for peer, ratio in ratios(row).items():
                    print(f"{n:>5} {kind:<4} maglevd/{peer}: {ratio:.2f}x CPU per probe", flush=True)
                runs.append(row)
            if args.repeat > 1:
                summarize(n, kind, runs)
    if not args.no_detection:
        for kind in args.types.split(","):
            for c in names:
                if c in skipped:
                    continue
                r = detection(c, kind, args.trials, args.warmup)
                results.append(r)
                if "skipped" in r:
                    print(f"detection {kind} {c}: skipped: {r['skipped']}", flush=True)
                    continue
                text = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("checker", "type"))
                print(f"detection {kind} {c}: {text}", flush=True)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
