"""Live servers for the tests that need real HTTP: the app in a uvicorn thread, or the real ``cim serve``.

:func:`serve_in_thread` serves an ASGI app on a free loopback port from a thread of the test process.
:func:`cim_serve` starts ``cim serve`` as a child process on a free loopback port with this test's
database and data folder, :func:`wait_ready` waits until a readiness probe answers (or the process died or
the deadline passed: then with the end of its log in the error), :func:`stop_process` ends it: a signal,
then a kill if it hangs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cim.localservice import free_port
from cim.settings import Settings


def serve_in_thread(app: Any, *, name: str, **config: Any) -> tuple[Any, threading.Thread, str]:
    """Serve ``app`` with uvicorn (``config``: more ``uvicorn.Config`` options) on a free 127.0.0.1 port.

    Returns once it accepts connections: the ``uvicorn.Server`` (set ``should_exit`` to stop it), its
    daemon thread and its base URL.
    """
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the test server {name} did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


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
