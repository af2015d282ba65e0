"""maglev.yaml: load, validate (two stages), compare. Pure Python: no Twisted, no grpc."""

from __future__ import annotations

from ..textfile import FileProblem, read_text
from .durations import format_duration, parse_duration
from .errors import ConfigError, ErrorKind, Problem
from .model import (
    Agent,
    AllDown,
    Backend,
    CheckType,
    Config,
    Dampening,
    DnsParams,
    Encap,
    ExecParams,
    Frontend,
    GrpcParams,
    HealthCheck,
    HealthCheckerSettings,
    HttpParams,
    IcmpParams,
    LbSettings,
    NameDiff,
    NatService,
    Pool,
    PoolMember,
    Protocol,
    StatusRange,
    TcpParams,
    diff_names,
)
from .semantics import check_semantics, effective_encap
from .structure import read_structure

MAX_FILE_SIZE = 16 * 1024 * 1024


def load_config(text: str) -> Config:
    """Parse and check one config text; raises ConfigError naming every problem of one stage."""
    cfg, lines = read_structure(text)
    check_semantics(cfg, lines)
    return cfg


def load_config_file(path: str) -> Config:
    """Read and load ``path``; an unreadable file (or a FIFO, a device: never waited on) is a
    structural error."""
    try:
        text = read_text(path, MAX_FILE_SIZE)
    except FileProblem as e:
        raise ConfigError(ErrorKind.STRUCTURAL, [Problem("<file>", str(e))]) from None
    return load_config(text)


__all__ = [
    "Agent",
    "AllDown",
    "Backend",
    "CheckType",
    "Config",
    "Dampening",
    "DnsParams",
    "ExecParams",
    "GrpcParams",
    "ConfigError",
    "Encap",
    "NatService",
    "ErrorKind",
    "Frontend",
    "HealthCheck",
    "HealthCheckerSettings",
    "HttpParams",
    "IcmpParams",
    "LbSettings",
    "NameDiff",
    "Pool",
    "PoolMember",
    "Problem",
    "Protocol",
    "StatusRange",
    "TcpParams",
    "check_semantics",
    "diff_names",
    "effective_encap",
    "format_duration",
    "load_config",
    "load_config_file",
    "parse_duration",
    "read_structure",
]
