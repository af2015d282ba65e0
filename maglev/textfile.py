"""Reading a small text file an operator points us at (config, tokens, certificates)
without ever blocking: a FIFO, a device or a directory is refused before any read
(opened non-blocking, then checked to be a regular file), and the read is bounded.
Pure: no Twisted.
"""

from __future__ import annotations

import os
import stat


class FileProblem(Exception):
    """The file cannot be used; the message names the file and the reason."""


def read_bytes(path: str, limit: int) -> bytes:
    """The whole of ``path`` (at most ``limit`` bytes); raises FileProblem."""
    try:
        # O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise FileProblem(f"cannot read {path}: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileProblem(f"{path} is not a regular file ({_kind(mode)})")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise FileProblem(f"cannot read {path}: {e.strerror}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileProblem(f"{path} is larger than {limit} bytes")
    return b"".join(chunks)


def read_text(path: str, limit: int) -> str:
    """``read_bytes`` decoded as UTF-8; raises FileProblem."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileProblem(f"{path} is not UTF-8: {e.reason}") from None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"
