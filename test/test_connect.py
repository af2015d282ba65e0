"""The compiled connect-check engine: real sockets on loopback, made-up time.

The engine never reads a clock: every call is given ``now``. So these tests drive
its timers with chosen times while its sockets connect for real, and wait for a
socket's answer on the engine's epoll fd (bounded), never by sleeping.
"""

from __future__ import annotations

import select
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted

from maglev.health.lateness import LATENESS_BUCKETS
from maglev.health.probes import DURATION_BUCKETS, _connect
from maglev.health.probes.connect import ConnectCheck, result_of
from maglev.health.state import ProbeResult

from .helpers import until
from .servers import BlackHole, connecting_to, refused_port

LOOPBACK = socket.inet_aton("127.0.0.1")
T0 = 1000.0
RES = 0.025
STALL = 0.05


def opener(pool: int) -> int:
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK).detach()


def engine(seed: int = 7, open_socket: Any = opener) -> _connect.ConnectChecks:
    e = _connect.ConnectChecks(open_socket, DURATION_BUCKETS, 0.005, seed)
    assert e.add_pool() == 0
    return e


@pytest.fixture
def e() -> Iterator[_connect.ConnectChecks]:
    """An engine, closed after the test."""
    checks = engine()
    yield checks
    checks.close()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield s
    s.close()


def port(s: socket.socket) -> int:
    number: int = s.getsockname()[1]
    return number


def target(e: _connect.ConnectChecks, to: socket.socket | int, timeout: float = 1.0) -> int:
    """A connect-check target on 127.0.0.1: a listener's port, or a port number."""
    return e.add(0, socket.AF_INET, LOOPBACK, to if isinstance(to, int) else port(to), timeout)


def answered(e: _connect.ConnectChecks, now: float) -> list[Any]:
    """Wait (at most 2 s) until a probe socket is ready, then let the engine handle it."""
    ready, _, _ = select.select([e.fileno()], [], [], 2.0)
    assert ready, "no socket became ready within 2 s"
    return e.poll(now) or []


def test_one_probe_reports_connected_refused_and_timeout(e: _connect.ConnectChecks, listener: socket.socket) -> None:
    hole = BlackHole()
    try:
        up = target(e, listener)
        down = target(e, refused_port())
        silent = target(e, hole.port, 0.5)
        for tid in (up, down, silent):
            assert e.start(tid, T0) is None
        got: dict[int, Any] = {}
        while len(got) < 2:
            for tid, _ok, err, duration, detail, *_ in answered(e, T0 + 0.001):
                got[tid] = result_of(err, duration, detail)
        assert (got[up].ok, got[up].code, got[up].detail) == (True, "L4OK", "connected")
        assert (got[down].ok, got[down].code, got[down].detail) == (False, "L4CON", "connection refused")
        assert got[up].duration == pytest.approx(0.001)
        # the timeout waits on the 5 ms grid: nothing at 0.4999 s, the timeout at 0.5
        assert e.next_wake() == pytest.approx(T0 + 0.5)
        assert e.tick(T0 + 0.4999) is None
        [(tid, ok, err, duration, *_)] = e.tick(T0 + 0.5) or []
        assert (tid, result_of(err, duration, None).code) == (silent, "L4TOUT")
        assert duration == pytest.approx(0.5)
        assert e.counts()["sockets_opened"] == 3
        assert e.counts()["idle_sockets"] == 3  # every outcome gives its socket back
    finally:
        hole.close()


def test_answers_already_there_win_over_their_timeout(e: _connect.ConnectChecks, listener: socket.socket) -> None:
    """The reactor stalled past the timeout while the connection completed in the kernel."""
    tid = target(e, listener, 0.2)
    e.start(tid, T0)
    select.select([e.fileno()], [], [], 2.0)
    [(_, ok, err, *_)] = e.tick(T0 + 5.0) or []
    assert (ok, err) == (1, 0)


def cadence(e: _connect.ConnectChecks, tid: int, until: float) -> list[tuple[float, float]]:
    """Run the engine's timers in 1 ms steps up to ``until``: (start time, its due time) of
    each autopilot probe."""
    starts = []
    now = T0
    while now < until:
        due_before = e.stats(tid)[7]
        sent_before = 0
        if e.tick(now) is not None:
            raise AssertionError("the autopilot gave up")
        s = e.stats(tid)
        sent_before = s[0]
        if sent_before:
            assert due_before is not None
            starts.append((now, due_before))
            assert not answered(e, now + 0.0002)  # connected: kept by the engine
        now = round(now + 0.001, 6)
    return starts


def test_autopilot_probes_on_the_grid_at_a_jittered_interval_and_only_counts(
    e: _connect.ConnectChecks, listener: socket.socket
) -> None:
    tid = target(e, listener)
    e.autopilot(tid, T0 + 0.01, 1.0, RES, STALL)
    assert e.phase(tid) == (1, 1)  # waiting, on autopilot
    starts = cadence(e, tid, T0 + 20.0)
    assert 18 <= len(starts) <= 22
    for (start, due), (_, next_due) in zip(starts, starts[1:], strict=False):
        step = next_due - due
        assert 0.9 - 1e-9 <= step <= 1.1 + 1e-9, step  # ±10% around the interval, from the due time
        assert due <= start <= -(-due // RES) * RES + 0.0011, (start, due)  # on the next grid step
    steps = [b[1] - a[1] for a, b in zip(starts, starts[1:], strict=False)]
    assert len({round(s, 4) for s in steps}) > 5, "no jitter"
    assert e.counts()["sockets_opened"] == 1


def test_autopilot_counts_are_handed_over_once(e: _connect.ConnectChecks, listener: socket.socket) -> None:
    tid = target(e, listener)
    e.autopilot(tid, T0, 0.1, 0.0, STALL)
    e.stats(tid)
    for k in range(3):
        e.tick(T0 + 0.1 * k + 0.05)
        answered(e, T0 + 0.1 * k + 0.052)
    sent, ok, hits, dur_sum, last_duration, last_time, late, next_due, _status = e.stats(tid)
    assert (sent, ok, hits) == (3, 3, ((1, 3),))  # 2 ms: the second bucket (1-2.5 ms), and only it
    assert dur_sum == pytest.approx(0.006) and last_duration == pytest.approx(0.002)
    assert last_time == pytest.approx(T0 + 0.252) and 0.0 < late <= 0.061, late  # due at a jittered time
    assert next_due is not None and next_due > T0 + 0.2
    assert e.stats(tid)[:3] == (0, 0, ())


def test_after_a_stall_the_next_probe_counts_from_its_start(listener: socket.socket) -> None:
    e = engine(seed=3)
    try:
        tid = target(e, listener)
        e.autopilot(tid, T0, 1.0, RES, STALL)
        e.tick(T0 + 0.5)  # half a second late: a stalled reactor
        answered(e, T0 + 0.5)
        next_due = e.stats(tid)[7]
        assert next_due is not None and T0 + 0.5 + 0.9 <= next_due <= T0 + 0.5 + 1.1
    finally:
        e.close()


def test_the_engine_counts_how_late_each_autopilot_start_was(listener: socket.socket) -> None:
    e = _connect.ConnectChecks(opener, DURATION_BUCKETS, 0.005, 5, LATENESS_BUCKETS)
    try:
        assert e.add_pool() == 0
        assert e.lateness() == ((0,) * (len(LATENESS_BUCKETS) + 1), 0.0)
        tid = target(e, listener)
        e.autopilot(tid, T0, 1.0, 0.0, STALL)
        e.tick(T0 + 0.0005)  # half a millisecond late: the first bucket
        answered(e, T0 + 0.001)
        due = e.stats(tid)[7]
        assert due is not None
        e.tick(due + 0.2)  # 200 ms late: a busy reactor (the 0.25 bucket)
        counts, total = e.lateness()
        assert counts[0] == 1 and counts[LATENESS_BUCKETS.index(0.25)] == 1 and sum(counts) == 2, counts
        assert total == pytest.approx(0.2005)
        # Cumulative, not handed over: a metric's counters.
        e.stats(tid)
        assert e.lateness() == (counts, total)
        e.close()  # kept when closed: a factory replaced (a netns change) hands them on
        assert e.lateness() == (counts, total)
    finally:
        e.close()


def test_the_first_probe_that_does_not_connect_ends_the_autopilot(
    e: _connect.ConnectChecks, listener: socket.socket
) -> None:
    tid = target(e, listener)
    e.autopilot(tid, T0, 1.0, 0.0, STALL)
    e.tick(T0)
    assert not answered(e, T0 + 0.001)
    listener.close()
    due = e.stats(tid)[7]
    assert due is not None
    e.tick(due + 0.01)
    [(got, ok, err, duration, detail, base, late, _data)] = answered(e, due + 0.011)
    assert (got, ok, err, detail) == (tid, 0, 111, None)  # ECONNREFUSED
    assert (base, late) == (pytest.approx(due), pytest.approx(0.01))
    assert e.phase(tid) == (0, 0)  # idle, off autopilot: Python decides what comes next
    sent, ok_count = e.stats(tid)[:2]
    assert (sent, ok_count) == (1, 0)  # the failed one was sent; only the successes were absorbed


def test_cancel_closes_the_socket_and_stale_events_are_ignored(
    e: _connect.ConnectChecks, listener: socket.socket
) -> None:
    hole = BlackHole()
    try:
        fillers = connecting_to(hole.port)
        tid = target(e, hole.port, 5.0)
        e.start(tid, T0)
        assert len(connecting_to(hole.port) - fillers) == 1, "the probe's own socket, connecting"
        e.cancel(tid)
        assert connecting_to(hole.port) == fillers, "the probe's socket is closed, nothing else"
        assert e.tick(T0 + 10.0) is None  # its timeout is gone too
        # a removed id is reused for a new target; the old one's events never reach it
        e.remove(tid)
        again = target(e, listener, 5.0)
        assert again == tid
        assert e.start(again, T0) is None
        [(got, ok, *_)] = answered(e, T0 + 0.001)
        assert (got, ok) == (again, 1)
    finally:
        hole.close()


def test_no_socket_is_a_failed_probe_with_the_reason() -> None:
    def no_files(pool: int) -> int:
        raise OSError(24, "socket: too many open files")

    e = engine(open_socket=no_files)
    try:
        tid = target(e, 80)
        answer = e.start(tid, T0)
        assert answer is not None
        r = result_of(answer[2], answer[3], answer[4])
        assert (r.ok, r.code, r.detail) == (False, "L4CON", "[Errno 24] socket: too many open files")
        e.autopilot(tid, T0, 1.0, 0.0, STALL)
        [answer] = e.tick(T0) or []
        assert (answer[0], answer[2]) == (tid, _connect.ERR_SOCKET)
        assert e.phase(tid) == (0, 0)
    finally:
        e.close()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda e: e.add(5, socket.AF_INET, LOOPBACK, 80, 1.0), "known pool"),
        (lambda e: e.add(0, socket.AF_INET, b"\x01\x02", 80, 1.0), "IPv4 or IPv6"),
        (lambda e: e.add(0, socket.AF_INET, LOOPBACK, 70000, 1.0), "a port"),
        (lambda e: e.add(0, socket.AF_INET, LOOPBACK, 80, 0.0), "timeout > 0"),
        (lambda e: e.autopilot(e.add(0, socket.AF_INET, LOOPBACK, 80, 1.0), T0, 0.0, RES, STALL), "interval > 0"),
        (lambda e: e.start(99, T0), "no connect-check target 99"),
        (lambda e: e.stats(99), "no connect-check target 99"),
        (lambda e: e.flush_pool(3), "no pool 3"),
    ],
)
def test_bad_calls_are_refused_with_the_reason(e: _connect.ConnectChecks, call: Any, error: str) -> None:
    with pytest.raises((ValueError, KeyError)) as info:
        call(e)
    assert error in str(info.value)


def test_a_busy_target_and_a_closed_engine_are_refused(listener: socket.socket) -> None:
    e = engine()
    tid = target(e, listener)
    e.start(tid, T0)
    with pytest.raises(RuntimeError, match="busy"):
        e.start(tid, T0)
    with pytest.raises(ValueError, match="busy"):
        e.autopilot(tid, T0, 1.0, RES, STALL)
    e.close()
    with pytest.raises(ValueError, match="closed"):
        e.tick(T0)
    with pytest.raises(ValueError, match="closed"):
        e.start(tid, T0)


# --- plain HTTP on the engine ---------------------------------------------------------------

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def http_target(e: _connect.ConnectChecks, listener: socket.socket, timeout: float = 1.0) -> int:
    return e.add(0, socket.AF_INET, LOOPBACK, port(listener), timeout, 0, REQUEST, [(200, 399)])


def judged(answer: tuple[Any, ...]) -> tuple[bool, str, str]:
    """An HTTP answer as the probe's result: (ok, code, detail)."""
    from maglev.config import HttpParams
    from maglev.health.probes.rawhttp import HttpVerdict

    _tid, _ok, err, duration, detail, _base, _late, data = answer
    r = result_of(err, duration, detail, data, lambda: HttpVerdict(HttpParams()))
    return r.ok, r.code, r.detail


def accept_request(listener: socket.socket) -> tuple[socket.socket, bytes]:
    """Accept the engine's connection and read its request (each wait at most 2 s)."""
    listener.settimeout(2.0)
    conn, _ = listener.accept()
    try:
        conn.settimeout(2.0)
        request = b""
        while not request.endswith(b"\r\n\r\n"):
            chunk = conn.recv(4096)
            assert chunk, "the engine closed before its request was complete"
            request += chunk
    except BaseException:
        conn.close()
        raise
    return conn, request


def serve_one(listener: socket.socket, answer: bytes | None) -> bytes:
    """Accept the engine's connection, read its request, send ``answer`` (None: close)."""
    conn, request = accept_request(listener)
    with conn:
        if answer is not None:
            conn.sendall(answer)
    return request


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", (True, "L7OK", "HTTP 200")),
        (b"HTTP/1.0 302 Found\r\n\r\n", (True, "L7OK", "HTTP 302")),
        (b"HTTP/1.1 500 Internal Server Error\r\n\r\n", (False, "L7STS", "HTTP 500")),
        (b"SSH-2.0-OpenSSH\r\n", (False, "L7RSP", "bad response: b'SSH-2.0-OpenSSH'")),
        (None, (False, "L7RSP", "bad response: no HTTP status line")),
    ],
)
def test_an_http_probe_sends_the_request_and_its_answer_is_judged_as_in_python(
    e: _connect.ConnectChecks, listener: socket.socket, answer: bytes | None, expected: tuple[bool, str, str]
) -> None:
    tid = http_target(e, listener)
    assert e.start(tid, T0) is None
    select.select([e.fileno()], [], [], 2.0)
    assert e.poll(T0 + 0.001) is None  # connected, request sent, waiting for the answer
    assert serve_one(listener, answer) == REQUEST
    [result] = answered(e, T0 + 0.002)
    assert judged(result) == expected
    assert e.counts()["idle_sockets"] == 1


def test_an_http_target_holds_its_request_and_a_status_buffer_only_while_in_flight(
    e: _connect.ConnectChecks, listener: socket.socket
) -> None:
    """100,000 targets: the request is the caller's bytes, not a copy, and the buffer for the
    status line is one of the engine's spares, taken when a probe begins and given back."""
    request = b"".join([b"GET /own HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n\r\n"])  # an object of its own
    held = sys.getrefcount(request)
    tids = [e.add(0, socket.AF_INET, LOOPBACK, port(listener), 1.0, 0, request, [(200, 399)]) for _ in range(3)]
    assert sys.getrefcount(request) == held + 3
    assert e.counts()["spare_heads"] == 0
    for tid in tids:
        assert e.start(tid, T0) is None
    for _ in range(5):  # the connects' edges: each request goes out
        if select.select([e.fileno()], [], [], 0.2)[0]:
            assert e.poll(T0 + 0.001) is None
    got: list[Any] = []
    for _ in tids:
        assert serve_one(listener, b"HTTP/1.1 200 OK\r\n\r\n") == request
    for _ in range(10):  # each answer as its socket becomes ready
        if len(got) == 3:
            break
        got += answered(e, T0 + 0.01)
    assert sorted(a[0] for a in got) == sorted(tids) and all(judged(a)[:2] == (True, "L7OK") for a in got)
    assert e.counts()["spare_heads"] == 3, "three were in flight at once; each gave its buffer back"
    assert e.start(tids[0], T0 + 1) is None
    assert e.counts()["spare_heads"] == 2, "a probe in flight holds one"
    e.cancel(tids[0])
    assert e.counts()["spare_heads"] == 3
    for tid in tids:
        e.remove(tid)
    assert sys.getrefcount(request) == held


def test_http_on_autopilot_counts_accepted_statuses_and_hands_back_the_rest(
    e: _connect.ConnectChecks, listener: socket.socket
) -> None:
    tid = http_target(e, listener)
    e.autopilot(tid, T0, 1.0, 0.0, STALL)
    now = T0
    for answer in (b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n", b"HTTP/2 200\r\n\r\n"):
        e.tick(now)
        select.select([e.fileno()], [], [], 2.0)
        assert e.poll(now + 0.001) is None
        serve_one(listener, answer)
        assert not answered(e, now + 0.002)  # a success: counted, not reported
        stats = e.stats(tid)
        assert stats[1] == 1 and stats[8] == int(answer[answer.index(b" ") + 1 :][:3])
        now = stats[7] or 0.0
        assert now > T0
    e.tick(now)
    select.select([e.fileno()], [], [], 2.0)
    e.poll(now + 0.001)
    serve_one(listener, b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
    [result] = answered(e, now + 0.002)
    assert (result[0], judged(result), e.phase(tid)) == (tid, (False, "L7STS", "HTTP 503"), (0, 0))


def test_an_http_probe_without_an_answer_times_out_as_l7(e: _connect.ConnectChecks, listener: socket.socket) -> None:
    tid = http_target(e, listener, timeout=0.5)
    e.start(tid, T0)
    select.select([e.fileno()], [], [], 2.0)
    e.poll(T0 + 0.001)
    listener.settimeout(2.0)
    conn, _ = listener.accept()  # accepted, never answered
    with conn:
        [result] = e.tick(T0 + 0.5) or []
        assert judged(result) == (False, "L7TOUT", "no response before the timeout")


def test_one_socket_serves_probe_after_probe_of_every_outcome_and_no_event_goes_astray(
    e: _connect.ConnectChecks, listener: socket.socket
) -> None:
    """Each socket stays in the epoll set from probe to probe (edge-triggered, never
    re-armed): the abort that ends one probe, and whatever it leaves queued, must never
    become the next probe's answer, whatever the outcomes in turn."""
    refused = target(e, refused_port())
    up = target(e, listener)
    http = http_target(e, listener)
    expected = {refused: (0, "L4CON"), up: (1, "L4OK")}
    for round_ in range(20):
        for tid in (refused, up, http):
            now = T0 + round_
            answer = e.start(tid, now)
            if tid == http:
                assert answer is None
                status = b"200 OK" if round_ % 2 else b"503 Service Unavailable"
                server = threading.Thread(target=serve_one, args=(listener, b"HTTP/1.1 " + status + b"\r\n\r\n"))
                server.start()
                [answer] = until_answered(e, now)
                server.join(5.0)
                assert (answer[0], judged(answer)[0]) == (http, round_ % 2 == 1), round_
                continue
            if answer is None:
                [answer] = until_answered(e, now)
            r = result_of(answer[2], answer[3], answer[4], answer[7], None)
            assert (answer[0], answer[1], r.code) == (tid, *expected[tid]), round_
    assert e.counts()["sockets_opened"] == 1, "every probe reused the one socket"
    assert e.poll(T0 + 30.0) is None, "nothing left over"


def until_answered(e: _connect.ConnectChecks, now: float) -> list[Any]:
    """The probe's answer, over as many ready sockets as it takes (an edge of nobody's is
    no answer); at most 50 waits of 2 s."""
    for _ in range(50):
        got = answered(e, now + 0.001)
        if got:
            return got
    raise AssertionError("no answer after 50 ready sockets")


def test_a_request_larger_than_the_send_buffer_goes_out_as_room_comes(listener: socket.socket) -> None:
    """A send that takes part of the request waits for the socket's next edge (more room)."""

    def small_buffer(pool: int) -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return s.detach()

    e = engine(open_socket=small_buffer)
    request = b"GET / HTTP/1.1\r\nX-Padding: " + b"x" * 400_000 + b"\r\n\r\n"
    tid = e.add(0, socket.AF_INET, LOOPBACK, port(listener), 5.0, 0, request, [(200, 399)])
    seen: list[bytes] = []
    server = threading.Thread(target=lambda: seen.append(serve_one(listener, b"HTTP/1.1 200 OK\r\n\r\n")))
    server.start()
    try:
        assert e.start(tid, T0) is None
        [answer] = until_answered(e, T0)
    finally:
        server.join(5.0)
        e.close()
    assert judged(answer) == (True, "L7OK", "HTTP 200")
    assert seen == [request]


def test_a_status_line_in_pieces_is_read_as_each_piece_comes(
    e: _connect.ConnectChecks, listener: socket.socket
) -> None:
    """After a piece without the line's end, the next bytes come with the socket's next edge."""
    tid = http_target(e, listener)
    assert e.start(tid, T0) is None
    assert answered(e, T0 + 0.001) == [], "connected, the request sent"
    conn, request = accept_request(listener)
    with conn:
        assert request == REQUEST
        conn.sendall(b"HTTP/1.1 2")
        assert answered(e, T0 + 0.001) == [], "half a status line is no answer yet"
        conn.sendall(b"04 No Content\r\n\r\n")
        [answer] = until_answered(e, T0 + 0.002)
    assert (answer[0], judged(answer)) == (tid, (True, "L7OK", "HTTP 204"))


# --- the autopilot in the health service, on the real reactor -----------------------------

SERVICE_CONFIG = """\
maglev:
  healthchecks:
    hc: {{type: tcp, port: {port}, interval: 50ms, fast-interval: 20ms, down-interval: 50ms, timeout: 200ms,
          rise: 2, fall: 3}}
  backends:
    b: {{address: 127.0.0.1, healthcheck: hc}}
"""


def reactor() -> Any:
    from twisted.internet import reactor as r

    return r


def transition(bus: Any, new: str) -> Any:
    from twisted.internet.defer import Deferred

    from maglev.events import BackendTransition

    d: Deferred[BackendTransition] = Deferred()

    def seen(t: BackendTransition) -> None:
        if t.new == new and not d.called:
            sub.cancel()
            d.callback(t)

    sub = bus.subscribe(BackendTransition, seen)
    d.addTimeout(10, reactor())
    return d


def bound_listener(number: int = 0) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", number))
    s.listen(64)
    return s


@pytest_twisted.ensureDeferred
async def test_a_steady_backend_runs_on_autopilot_and_its_first_failure_comes_back() -> None:
    from maglev.bus import EventBus
    from maglev.config import load_config
    from maglev.health.metrics import HealthMetrics
    from maglev.health.service import HealthService

    from .helpers import sample

    server = bound_listener()
    number = port(server)
    bus = EventBus()
    svc = HealthService(load_config(SERVICE_CONFIG.format(port=number)), bus, reactor())
    metrics = HealthMetrics(svc.view)
    up = transition(bus, "up")
    svc.startService()
    try:
        await up
        p = svc.probers["b"]

        def flying() -> bool:  # a function: mypy would take the property for a constant
            return p.autopilot

        await until(flying)
        sent = svc.prober("b").probes_sent
        await until(lambda: svc.prober("b").probes_sent >= sent + 5)  # probes go on, counted by the engine
        last = p.health.last_result_time
        assert last is not None and p.health.last_result is not None and p.health.last_result.code == "L4OK"
        assert flying() and p.health.state.value == "up"
        text = metrics.text()
        oks = p.results[(True, "L4OK")]
        assert (
            sample(text, "maglev_probe_total", {"backend": "b", "code": "L4OK", "result": "success", "type": "tcp"})
            == oks
        )
        assert sample(text, "maglev_probe_duration_seconds_count", {"backend": "b", "type": "tcp"}) == oks

        down = transition(bus, "down")
        server.close()
        t = await down
        assert (t.code, t.old) == ("L4CON", "up")
        # the autopilot's failure came back to the state machine: down after exactly `fall` failures
        assert p.results[(False, "L4CON")] == 3 and not flying()

        up = transition(bus, "up")
        server = bound_listener(number)
        await up
        await until(flying)

        svc.pause("b")
        assert not flying() and not p.in_flight
        probe = p.probe
        assert isinstance(probe, ConnectCheck) and probe.engine.phase(probe) == (0, 0)  # nothing waits
    finally:
        svc.stopService()
        server.close()
    # a view after the service stopped (a gRPC call racing the shutdown) still gets the backend
    assert svc.prober("b").health.last_result is not None


@pytest_twisted.ensureDeferred
async def test_with_probe_observers_every_probe_comes_to_python() -> None:
    from maglev.bus import EventBus
    from maglev.config import load_config
    from maglev.health.service import HealthService, ProbeObserved

    server = bound_listener()
    seen: list[ProbeObserved] = []
    svc = HealthService(
        load_config(SERVICE_CONFIG.format(port=port(server))), EventBus(), reactor(), observers=[seen.append]
    )
    svc.startService()
    try:
        await until(lambda: len(seen) >= 8)
        p = svc.prober("b")
        assert not p.autopilot and p.health.state.value == "up"
        assert p.probes_sent - int(p.in_flight) == len(seen)
    finally:
        svc.stopService()
        server.close()


HTTP_CONFIG = """\
maglev:
  healthchecks:
    hc: {{type: http, port: {port}, interval: 50ms, fast-interval: 20ms, down-interval: 50ms, timeout: 200ms,
          rise: 2, fall: 3, params: {{path: /healthz}}}}
  backends:
    b: {{address: 127.0.0.1, healthcheck: hc}}
"""


async def flying(config: str) -> tuple[Any, Any, Any]:
    """A HealthService of ``config``, started, once its backend ``b`` is up and on autopilot:
    (service, bus, prober); the caller stops the service."""
    from maglev.bus import EventBus
    from maglev.config import load_config
    from maglev.health.service import HealthService

    bus = EventBus()
    svc = HealthService(load_config(config), bus, reactor())
    up = transition(bus, "up")
    svc.startService()
    try:
        await up
        p = svc.probers["b"]
        await until(lambda: bool(p.autopilot))
    except BaseException:
        svc.stopService()
        raise
    return svc, bus, p


async def a_bad_status_comes_back(bus: Any, p: Any, answer_500: Callable[[], None]) -> None:
    """The backend answers 500 from now: it goes down after exactly ``fall`` (3) probes,
    and its prober is back in Python."""
    down = transition(bus, "down")
    answer_500()
    t = await down
    assert (t.code, t.detail, t.old) == ("L7STS", "HTTP 500", "up")
    assert p.results[(False, "L7STS")] == 3 and not p.autopilot


@pytest_twisted.ensureDeferred
async def test_a_steady_http_backend_flies_too_and_a_bad_status_comes_back() -> None:
    from .servers import Behaviour, http_server, port_of, stop

    behaviour = Behaviour()
    server = http_server(reactor(), behaviour)
    svc, bus, p = await flying(HTTP_CONFIG.format(port=port_of(server)))
    try:
        seen = len(behaviour.requests)
        await until(lambda: len(behaviour.requests) >= seen + 5)  # the engine's requests reach the server
        assert behaviour.requests[-1]["path"] == b"/healthz" and p.autopilot
        q = svc.prober("b")
        assert q.results[(True, "L7OK")] >= 5 and q.health.last_result is not None
        assert (q.health.last_result.code, q.health.last_result.detail) == ("L7OK", "HTTP 200")

        def answer_500() -> None:
            behaviour.status = 500

        await a_bad_status_comes_back(bus, p, answer_500)
    finally:
        svc.stopService()
        await stop(server)


def test_http_checks_with_expect_body_stay_in_python() -> None:
    import ipaddress

    from maglev.config import Backend, CheckType, HealthCheck, HttpParams
    from maglev.health.probes import ProbeFactory

    factory = ProbeFactory(reactor())
    backend = Backend("b", ipaddress.ip_address("127.0.0.1"), "hc")
    try:
        for kind in (CheckType.HTTP, CheckType.HTTPS):
            plain = factory.probe_for(backend, HealthCheck("hc", kind, port=80, params=HttpParams()))
            params = HttpParams(expect_body="ok")
            body = factory.probe_for(backend, HealthCheck("hc", kind, port=80, params=params))
            assert isinstance(getattr(plain, "pilot", None), ConnectCheck), kind
            assert getattr(body, "pilot", "missing") is None, kind  # the body needs Python's reading
    finally:
        factory.close()


def test_answers_are_handed_over_a_turn_at_a_time(listener: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    from twisted.internet.testing import MemoryReactorClock

    from maglev.health.probes import connect

    monkeypatch.setattr(connect, "ANSWERS_PER_TURN", 4)
    r = MemoryReactorClock()
    eng = connect.ConnectEngine(r, DURATION_BUCKETS, 0.0)  # type: ignore[arg-type]  # a clock and readers: enough
    try:
        got: list[str] = []
        checks = [ConnectCheck(eng, "127.0.0.1", port(listener), 2.0, None, None, name=f"c{i}") for i in range(10)]
        for i, c in enumerate(checks):

            def done(result: ProbeResult, i: int = i) -> None:
                got.append(f"c{i} {result.code}")

            c.start(done)
        listener.settimeout(5.0)
        accepted = [listener.accept()[0] for _ in range(10)]  # every connect has completed
        eng.doRead()  # one read brings in all ten answers
        assert len(got) == 4, "no more than a turn's worth at once"
        r.advance(0)  # the next turns hand over the rest, a turn at a time
        for conn in accepted:
            conn.close()
        assert sorted(got) == sorted(f"c{i} L4OK" for i in range(10))
    finally:
        eng.close()
    assert not r.getDelayedCalls() or not any(c.active() for c in r.getDelayedCalls())


@pytest_twisted.ensureDeferred
async def test_on_the_asyncio_reactor_the_engine_reads_from_the_loop_and_a_failing_read_closes_it_loudly(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twisted.logger import ILogObserver, globalLogPublisher

    from maglev.health.probes import connect

    r = reactor()
    readers = len(r.getReaders())
    eng = connect.ConnectEngine(r, DURATION_BUCKETS, 0.0)
    seen: list[dict[str, Any]] = []
    observer: ILogObserver = seen.append  # type: ignore[assignment]
    globalLogPublisher.addObserver(observer)
    try:
        got: list[str] = []
        first = ConnectCheck(eng, "127.0.0.1", port(listener), 2.0, None, None, name="first")
        first.start(lambda result: got.append(result.code))
        assert len(r.getReaders()) == readers  # the loop's reader, not one the reactor tracks
        await until(lambda: got == ["L4OK"])

        def broken() -> None:
            raise OSError("epoll went away")

        monkeypatch.setattr(eng, "doRead", broken)
        second = ConnectCheck(eng, "127.0.0.1", port(listener), 2.0, None, None, name="second")
        second.start(lambda result: got.append(result.code))
        await until(lambda: eng.fileno() == -1)
    finally:
        globalLogPublisher.removeObserver(observer)
        eng.close()
    assert [e["log_failure"].value.args for e in seen if e.get("event") == "reader-failed"] == [("epoll went away",)]
    assert got == ["L4OK"]
