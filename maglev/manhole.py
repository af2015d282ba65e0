"""The manhole: a Python console inside the running daemon, for operators.

Two ways in, never an unauthenticated TCP port:

* a unix socket created with mode 0600 (the file permission is the
  authentication): ``socat -,raw,echo=0 UNIX-CONNECT:/run/vpp-maglev/manhole.sock``;
* SSH on a loopback address, public-key only, keys from an authorized_keys file
  that is re-read at every login.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.application.service import MultiService
from twisted.conch import manhole, manhole_ssh
from twisted.conch.checkers import IAuthorizedKeysDB, SSHPublicKeyChecker
from twisted.conch.insults import insults
from twisted.conch.ssh import keys
from twisted.cred import portal
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from .addresses import TcpAddress, UnixAddress
from .listener import ListenerService
from .log import Logger

if TYPE_CHECKING:
    from .reactor import Reactor


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """Any user name, if its key is in the file; the file is read at each login."""

    log = Logger()

    def __init__(self, path: str) -> None:
        self.path = path

    def getAuthorizedKeys(self, username: bytes) -> list[keys.Key]:
        found: list[keys.Key] = []
        try:
            with open(self.path, "rb") as f:
                lines = f.readlines()
        except OSError as e:
            self.log.error("manhole: cannot read {path}: {error}", path=self.path, error=e.strerror)
            return found
        for line in lines:
            line = line.strip()
            if not line or line.startswith(b"#"):
                continue
            try:
                found.append(keys.Key.fromString(line))
            except Exception:
                continue  # options-prefixed or unsupported lines are skipped
        return found


def load_or_create_host_key(path: str) -> keys.Key:
    p = Path(path)
    if p.exists():
        existing: keys.Key = keys.Key.fromFile(str(p))
        return existing
    p.parent.mkdir(parents=True, exist_ok=True)
    key = keys.Key(ed25519.Ed25519PrivateKey.generate())
    fd = os.open(str(p), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.toString("openssh"))
    return key


class _ConsoleFactory(Factory):
    noisy = False

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

    def buildProtocol(self, addr: Any) -> Protocol:
        proto = insults.ServerProtocol(manhole.ColoredManhole, self.namespace)
        proto.factory = self  # type: ignore[assignment]
        return proto


def _ssh_factory(namespace: dict[str, Any], authorized_keys: str, host_key_path: str) -> manhole_ssh.ConchFactory:
    realm = manhole_ssh.TerminalRealm()

    def chained(*args: Any, **kwargs: Any) -> insults.ServerProtocol:
        return insults.ServerProtocol(manhole.ColoredManhole, namespace)

    realm.chainedProtocolFactory = chained  # type: ignore[assignment]
    checker = SSHPublicKeyChecker(AuthorizedKeysFile(authorized_keys))
    factory = manhole_ssh.ConchFactory(portal.Portal(realm, [checker]))  # type: ignore[arg-type]
    key = load_or_create_host_key(host_key_path)
    key_type: bytes = key.sshType()
    # ConchFactory declares bytes values, but SSHFactory uses Key objects here.
    factory.publicKeys = {key_type: key.public()}
    factory.privateKeys = {key_type: key}  # type: ignore[dict-item]
    return factory


class ManholeService(MultiService):
    """Off unless --manhole-addr is given."""

    def __init__(
        self,
        address: TcpAddress | UnixAddress,
        namespace: dict[str, Any],
        reactor: Reactor,
        authorized_keys: str = "",
        host_key: str = "",
    ) -> None:
        super().__init__()
        self.setName("manhole")
        self.namespace = namespace
        if isinstance(address, UnixAddress):
            desc = f"unix:{address.path.replace(':', chr(92) + ':')}:mode=600:lockfile=1"
            listener = ListenerService("manhole-unix", desc, _ConsoleFactory(namespace), reactor, umask=0o177)
        else:
            if not address.is_loopback:
                raise ValueError(f"the SSH manhole only listens on loopback addresses, not {address}")
            factory = _ssh_factory(namespace, authorized_keys, host_key)
            listener = ListenerService("manhole-ssh", address.endpoint(), factory, reactor)
        listener.setServiceParent(self)
