"""Network namespaces and veth pairs that tests create and always delete again."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

_counter = itertools.count()


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    return None


needs_netns = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 10000}{next(_counter)}"


@contextmanager
def namespace() -> Iterator[str]:
    """A fresh namespace with loopback up."""
    name = unique("mgns")
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        ip("netns", "del", name, check=False)


@contextmanager
def veth_to(ns: str, host_addr: str, ns_addr: str, plen: int) -> Iterator[tuple[str, str]]:
    """A veth pair from this namespace into ``ns``; yields (host side, namespace side) names."""
    host, peer = unique("mgh"), unique("mgp")
    ip("link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
    try:
        ip("addr", "add", f"{host_addr}/{plen}", "dev", host)
        ip("link", "set", host, "up")
        ip("-n", ns, "addr", "add", f"{ns_addr}/{plen}", "dev", peer)
        ip("-n", ns, "link", "set", peer, "up")
        yield host, peer
    finally:
        ip("link", "del", host, check=False)
