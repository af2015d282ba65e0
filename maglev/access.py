"""Who may drive the API: the tokens file, the role each RPC needs, and the one
decision table. Pure: no Twisted, no grpc (the gRPC interceptor, ``api/guard.py``,
feeds it what the call carried).

    tokens file (--grpc-tokens)       decision for an RPC needing ROLE
    ---------------------------       --------------------------------------------------
    absent                            read: open; admin: loopback peers only
    present                           a Bearer token, else a client certificate's subject,
                                      else the ``loopback`` role for loopback peers;
                                      none of these: UNAUTHENTICATED; too weak a role:
                                      PERMISSION_DENIED

The file holds each token's SHA-256, never the token, so reading it gives no access.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass, field
from enum import Enum

from .config.errors import ConfigError, ErrorKind, Problem, ProblemList
from .config.structure import Lines, Reader
from .config.yamltree import Node, parse_yaml
from .textfile import FileProblem, read_text

MAX_TOKENS_FILE = 1 << 20
MAGLEV_SERVICE = "maglev.v1.Maglev"
OPEN_SERVICES = frozenset({"grpc.health.v1.Health"})  # load balancers and orchestrators probe it
# Everything else of the Maglev service needs admin: a method added later is closed until listed here.
READ_METHODS = frozenset(
    {
        "GetVersion",
        "PreviewChange",
        "ListFrontends",
        "GetFrontend",
        "ListBackends",
        "GetBackend",
        "ListHealthChecks",
        "GetHealthCheck",
        "WatchEvents",
        "CheckConfig",
        "GetVPPInfo",
        "GetVPPLBState",
        "GetVPPLBCounters",
    }
)
SHA256 = re.compile(r"[0-9a-f]{64}")


class Role(Enum):
    READ = "read"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        return self is Role.ADMIN or needed is Role.READ


class LoopbackRole(Enum):
    NONE = "none"
    READ = "read"
    ADMIN = "admin"

    @property
    def role(self) -> Role | None:
        return None if self is LoopbackRole.NONE else Role(self.value)


@dataclass(frozen=True)
class Policy:
    """A parsed tokens file."""

    tokens: dict[str, tuple[str, Role]] = field(default_factory=dict)  # sha256 hex -> (name, role)
    subjects: dict[str, Role] = field(default_factory=dict)  # certificate subject -> role
    loopback: Role | None = None  # the role of a loopback peer that brings no credentials

    def describe(self) -> dict[str, int | str]:
        return {
            "tokens": len(self.tokens),
            "certificates": len(self.subjects),
            "loopback": self.loopback.value if self.loopback else "none",
        }


@dataclass(frozen=True)
class Caller:
    """What a call carried: its peer, and the credentials it presented."""

    peer: str  # "127.0.0.1:41234", "[2001:db8::1]:5000", "unix:/run/x"
    loopback: bool
    authorization: str | None = None  # the raw metadata value
    subject: str | None = None  # a verified client certificate's subject (RFC 2253)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    who: str  # "token:alice", "cert:CN=ops", "loopback", "anonymous"
    refusal: str = ""  # "", "unauthenticated" or "permission_denied"
    message: str = ""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def needed_role(full_method: str) -> Role | None:
    """The role ``/package.Service/Method`` needs; None: open to everyone."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    if service in OPEN_SERVICES:
        return None
    if service == MAGLEV_SERVICE and method not in READ_METHODS:
        return Role.ADMIN
    return Role.READ  # reads of ours, server reflection; unknown methods answer UNIMPLEMENTED anyway


def method_name(full_method: str) -> str:
    return full_method.rpartition("/")[2] or full_method


def decide(policy: Policy | None, full_method: str, caller: Caller) -> Decision:
    """The one decision: may ``caller`` make this call?"""
    needed = needed_role(full_method)
    method = method_name(full_method)
    if policy is None:
        who = "loopback" if caller.loopback else "anonymous"
        if needed is not Role.ADMIN or caller.loopback:
            return Decision(True, who)
        return Decision(
            False,
            who,
            "permission_denied",
            f"{method} changes state, and without a tokens file maglevd accepts changes only from this "
            "host's loopback: start maglevd with --grpc-tokens FILE (MAGLEV_GRPC_TOKENS) and send an admin "
            "token (maglevc --token-file FILE)",
        )
    identity = _identify(policy, caller)
    if isinstance(identity, Decision):
        return identity if needed is not None else Decision(True, identity.who)
    who, role = identity
    if needed is None or (role is not None and role.allows(needed)):
        return Decision(True, who)
    if role is None:
        return Decision(
            False,
            who,
            "unauthenticated",
            "this maglevd needs credentials: send a token (maglevc --token-file FILE) "
            "or a client certificate listed in its tokens file",
        )
    return Decision(False, who, "permission_denied", f"{who} has role {role.value}; {method} needs {needed.value}")


def _identify(policy: Policy, caller: Caller) -> tuple[str, Role | None] | Decision:
    """(who, role) from the strongest credential presented; a refusal for a bad one."""
    if caller.authorization is not None:
        scheme, _, token = caller.authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Decision(False, "anonymous", "unauthenticated", "the authorization metadata must be 'Bearer TOKEN'")
        digest = hash_token(token)
        for known, (name, token_role) in policy.tokens.items():
            if hmac.compare_digest(known, digest):
                return f"token:{name}", token_role
        return Decision(False, "anonymous", "unauthenticated", "unknown token (it is not in maglevd's tokens file)")
    if caller.subject is not None:
        role = policy.subjects.get(caller.subject)
        if role is None:
            return Decision(
                False,
                f"cert:{caller.subject}",
                "unauthenticated",
                f"certificate subject {caller.subject!r} is not in maglevd's tokens file",
            )
        return f"cert:{caller.subject}", role
    if caller.loopback:
        return "loopback", policy.loopback
    return "anonymous", None


def is_loopback_peer(peer: str) -> bool:
    """grpc's ``context.peer()`` (``ipv4:127.0.0.1:5``, ``ipv6:[::1]:5``, ``unix:...``) is this host."""
    kind, _, rest = peer.partition(":")
    if kind == "unix":
        return True
    if kind == "ipv4":
        host = rest.rpartition(":")[0]
    elif kind == "ipv6":
        host = rest.rpartition(":")[0].strip("[]")
    else:
        return False
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def peer_address(peer: str) -> str:
    """``ipv4:10.0.0.1:5`` -> ``10.0.0.1:5``; the form people read in logs."""
    kind, _, rest = peer.partition(":")
    return rest if kind in ("ipv4", "ipv6") else peer


def parse_policy(text: str) -> Policy:
    """A tokens file's text; raises ConfigError naming every problem with its line."""
    problems = ProblemList()
    root = parse_yaml(text, problems)
    problems.raise_if_any(ErrorKind.STRUCTURAL)
    r = Reader(problems, Lines())
    top = r.fields(root, "<yaml>", {"tokens", "certificates", "loopback"}) or {}
    tokens: dict[str, tuple[str, Role]] = {}
    names: set[str] = set()
    for i, node in enumerate(_items(r, top.get("tokens"), "tokens")):
        path = f"tokens[{i}]"
        f = r.fields(node, path, {"name", "role", "sha256"}, {"name", "role", "sha256"})
        if f is None:
            continue
        name = r.string(f.get("name"), f"{path}.name")
        role = r.choice(f.get("role"), f"{path}.role", Role)
        node_sha = f.get("sha256")
        if node_sha is not None and isinstance(node_sha.value, int) and not isinstance(node_sha.value, bool):
            r.err(f"{path}.sha256", "reads as a number: quote the SHA-256 (64 hex digits)", node_sha)
            continue
        digest = r.string(node_sha, f"{path}.sha256")
        if isinstance(digest, str):
            digest = digest.strip().lower()
            if not SHA256.fullmatch(digest):
                r.err(f"{path}.sha256", "must be the token's SHA-256 as 64 hex digits (sha256sum)", f.get("sha256"))
                digest = None
            elif digest in tokens:
                r.err(f"{path}.sha256", f"the same token as {tokens[digest][0]!r}", f.get("sha256"))
                digest = None
        if isinstance(name, str) and name in names:
            r.err(f"{path}.name", f"token name {name!r} is used twice", f.get("name"))
            name = None
        if isinstance(name, str) and not name.strip():
            r.err(f"{path}.name", "must not be empty", f.get("name"))
            name = None
        if isinstance(name, str) and digest and role is not None:
            names.add(name)
            tokens[digest] = (name, role)
    subjects: dict[str, Role] = {}
    for i, node in enumerate(_items(r, top.get("certificates"), "certificates")):
        path = f"certificates[{i}]"
        f = r.fields(node, path, {"subject", "role"}, {"subject", "role"})
        if f is None:
            continue
        subject = r.string(f.get("subject"), f"{path}.subject")
        role = r.choice(f.get("role"), f"{path}.role", Role)
        if isinstance(subject, str) and subject in subjects:
            r.err(f"{path}.subject", f"subject {subject!r} is listed twice", f.get("subject"))
        elif isinstance(subject, str) and role is not None:
            subjects[subject] = role
    loopback = r.choice(top.get("loopback"), "loopback", LoopbackRole, LoopbackRole.NONE)
    problems.raise_if_any(ErrorKind.STRUCTURAL)
    return Policy(tokens, subjects, loopback.role if loopback is not None else None)


def _items(r: Reader, node: Node | None, path: str) -> list[Node]:
    if node is None or node.value is None:
        return []
    if not isinstance(node.value, list):
        r.err(path, "expected a list", node)
        return []
    return node.value


def load_policy(path: str) -> Policy:
    """Read and parse a tokens file; raises ConfigError (an unreadable file is one problem)."""
    try:
        text = read_text(path, MAX_TOKENS_FILE)
    except FileProblem as e:
        raise ConfigError(ErrorKind.STRUCTURAL, [Problem("<file>", str(e))]) from None
    return parse_policy(text)
