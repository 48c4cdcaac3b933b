"""What the platform's private servers (PostgreSQL primary and standby, Mosquitto) share to start and stop.

A free loopback port, the live process behind a pid file (a pid reused after a crash or a reboot belongs to
another program, and a zombie is not alive), waiting until a port accepts connections, and the last lines
of a log for error messages. Their state files and locks are in :mod:`cim.localstate`.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from cim.localstate import exclusive_lock, read_json_state

StateT = TypeVar("StateT")

LOOPBACK = "127.0.0.1"


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:``port`` and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None) -> int:
    """A free TCP port on 127.0.0.1: ``preferred`` when it is free, else one the OS picks."""
    if preferred is not None and port_is_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def pid_from_file(path: Path, line: int = 0) -> int | None:
    """The process id on line ``line`` of a pid file (None when the file is missing or holds no number)."""
    try:
        return int(path.read_text(encoding="utf-8").splitlines()[line].strip())
    except (OSError, ValueError, IndexError):
        return None


def live_pid(pid: int | None, *markers: str) -> int | None:
    """``pid`` when it is a live, non-zombie process whose command line contains every one of ``markers``.

    The markers (program name, its data folder or configuration file) tell our server from an unrelated
    program that got the same pid after a crash or a reboot: then the pid file is stale.
    """
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return None
    except IndexError:
        return None
    return pid if all(marker in cmdline for marker in markers) else None


def wait_for_port(port: int, timeout: float) -> bool:
    """Wait until 127.0.0.1:``port`` accepts TCP connections; False when ``timeout`` seconds passed first."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def log_tail(path: Path, lines: int = 3) -> str:
    """The last ``lines`` lines of a log file joined by `` | `` (whitespace collapsed); "" when unreadable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(re.sub(r"\s+", " ", line) for line in text[-lines:])


@contextlib.contextmanager
def locked_folder(folder: Path, lock_name: str, *, mode: int = 0o777) -> Iterator[None]:
    """Hold the exclusive lock ``folder/lock_name`` for the ``with`` block (the folder is made, with ``mode``)."""
    folder.mkdir(parents=True, exist_ok=True, mode=mode)
    with exclusive_lock(folder / lock_name):
        yield


def saved_state(path: Path, kind: type[StateT]) -> StateT | None:
    """The state saved at ``path`` as a ``kind`` (a dataclass), None when none is saved.

    Raises ``ValueError`` when the file is not JSON or does not fit ``kind``.
    """
    try:
        saved = read_json_state(path)
        return None if saved is None else kind(**saved)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
