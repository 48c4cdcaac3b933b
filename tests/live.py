"""The real ``cim serve`` as a child process, for the tests that need more than the in-process app.

:func:`cim_serve` starts it on a free loopback port with this test's database and data folder,
:func:`wait_ready` waits until a readiness probe answers (or the process died / the deadline passed, then
with the end of its log in the error), :func:`stop_process` ends it: a signal, then a kill if it hangs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cim.localservice import free_port
from cim.settings import Settings


def cim_serve(
    settings: Settings, log: Path, *args: str, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m cim serve --port <free> *args`` on ``settings``; its output goes to ``log``.

    Returns the process and its base URL (``http://127.0.0.1:<port>``).
    """
    settings.data_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": str(settings.database_url),
        "CIM_DATA_DIR": str(settings.data_path),
        "CIM_API_ACCESS_LOG": "false",
        **(extra_env or {}),
    }
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "cim", "serve", "--port", str(port), *args], env=env, stdout=out, stderr=out
        )
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    log: Path,
    *,
    what: str,
    not_yet: tuple[type[BaseException], ...] = (OSError,),
    timeout: float = 90.0,
    every: float = 0.3,
) -> None:
    """Poll ``ready()`` (an exception in ``not_yet`` counts as "not yet") until it is true.

    When ``proc`` exits or ``timeout`` seconds pass first, kill it and raise ``RuntimeError`` with the end
    of ``log``.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except not_yet:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}")
        time.sleep(every)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to a running ``proc`` and wait ``timeout`` seconds for it to exit; kill it if it does not."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
