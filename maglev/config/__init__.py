"""maglev.yaml: load, validate (two stages), compare. Pure Python: no Twisted, no grpc."""

from __future__ import annotations

from .durations import format_duration, parse_duration
from .errors import ConfigError, ErrorKind, Problem
from .model import (
    Backend,
    CheckType,
    Config,
    Encap,
    Frontend,
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
    """Read and load ``path``; an unreadable file is a structural error."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_SIZE + 1)
    except OSError as e:
        raise ConfigError(ErrorKind.STRUCTURAL, [Problem("<file>", f"cannot read {path}: {e.strerror}")]) from e
    if len(data) > MAX_FILE_SIZE:
        raise ConfigError(ErrorKind.STRUCTURAL, [Problem("<file>", f"{path} is larger than {MAX_FILE_SIZE} bytes")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(ErrorKind.STRUCTURAL, [Problem("<file>", f"{path} is not UTF-8: {e.reason}")]) from e
    return load_config(text)


__all__ = [
    "Backend",
    "CheckType",
    "Config",
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
