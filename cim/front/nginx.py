"""Start and stop the front's nginx under ``$CIM_DATA_DIR/front/``, like the private PostgreSQL cluster.

One lock (``$CIM_DATA_DIR/.front.lock``) so concurrent starts take turns, one JSON state file
(``front/front.json``) replaced atomically. ``up`` writes the config, has nginx check it (``nginx -t``),
starts the master as a child process (``daemon off``; a taken port makes it exit at once) and waits for its
pid file and port; any failure removes everything it wrote and reports the end of nginx's error log. ``down`` stops
the master gracefully (``SIGQUIT``: open requests finish) and removes the runtime files (the logs stay).
As root the workers run as ``www-data`` (or ``nobody``) when that user can read the tiles; otherwise as root,
which the state records and ``cim serve`` reports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cim.errors import ConfigError
from cim.front.config import FrontConfig, render_nginx_conf
from cim.localservice import locked_folder, saved_state
from cim.localstate import write_json_state

_HINT = "install the Debian package nginx-light (`make setup` does)"
_TEMP_DIRS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")
_WORKER_USERS = ("www-data", "nobody")


class FrontError(ConfigError):
    """The nginx front could not be configured, started or stopped."""


@dataclass(frozen=True)
class FrontState:
    """What ``front/front.json`` records about the running front."""

    host: str
    port: int
    app_port: int
    pid: int
    owner_pid: int
    """The ``cim serve`` process that started it (an orphan of a dead owner is stopped by the next ``up``)."""
    worker_user: str | None
    config: str


def find_nginx() -> Path:
    """The ``nginx`` executable."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise FrontError(f"nginx not found: {_HINT}")
    return Path(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_user_for(folder: Path) -> str | None:
    """The unprivileged user nginx's workers should run as to read ``folder`` (as root), else ``None``
    (not root: workers keep the caller's user) or ``"root"`` (no unprivileged user can read it)."""
    if os.geteuid() != 0:
        return None
    import pwd

    for user in _WORKER_USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        check = ["runuser", "-u", user, "--", "test", "-r", str(folder), "-a", "-x", str(folder)]
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return user
    return "root"


class NginxFront:
    """The nginx front of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.dir = self.data_dir / "front"
        self.state_file = self.dir / "front.json"
        self.config_file = self.dir / "nginx.conf"
        self.pid_file = self.dir / "nginx.pid"
        self.error_log = self.dir / "error.log"

    def config(self, **fields: object) -> FrontConfig:
        """A :class:`FrontConfig` for this data directory (``prefix`` and ``data_path`` filled in)."""
        return FrontConfig(prefix=self.dir, data_path=self.data_dir, **fields)  # type: ignore[arg-type]

    # -- public operations ---------------------------------------------------------------------------

    def up(self, config: FrontConfig) -> FrontState:
        """Write the config and start nginx; return its state. Nothing is left behind when it fails."""
        nginx = find_nginx()
        with self._lock():
            self._stop_orphan()
            (self.data_dir / "tiles").mkdir(parents=True, exist_ok=True)
            if config.user is None:
                config = replace(config, user=worker_user_for(self.data_dir / "tiles"))
            text = render_nginx_conf(config)  # ConfigError before anything is written
            created = not self.dir.exists()
            try:
                self._write(config, text)
                self._run(nginx, "-t", what="nginx -t (config check)")
                pid = self._wait_started(config, self._spawn(nginx))
                state = FrontState(
                    host=config.host,
                    port=config.port,
                    app_port=config.app_port,
                    pid=pid,
                    owner_pid=os.getpid(),
                    worker_user=config.user,
                    config=str(self.config_file),
                )
                write_json_state(self.state_file, asdict(state))
                return state
            except BaseException:
                self._kill_started()
                self._clean(all_files=created)
                raise

    def down(self) -> bool:
        """Stop nginx (open requests finish) and remove its runtime files; False when it was not running."""
        with self._lock():
            return self._stop()

    def status(self) -> FrontState | None:
        """The running front's state, or ``None``."""
        state = self._state()
        if state is None or self._master_pid() is None:
            return None
        return state

    # -- internals -----------------------------------------------------------------------------------

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return locked_folder(self.data_dir, ".front.lock")

    def _state(self) -> FrontState | None:
        try:
            return saved_state(self.state_file, FrontState)
        except ValueError:
            return None

    def _master_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8").strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        # a reused pid after a crash belongs to another program
        return pid if b"nginx" in cmdline and str(self.config_file).encode() in cmdline else None

    def _stop_orphan(self) -> None:
        state = self._state()
        if self._master_pid() is None:
            self._clean(all_files=False)
            return
        if state is not None and state.owner_pid != os.getpid() and _alive(state.owner_pid):
            raise FrontError(
                f"an nginx front of {self.data_dir} already runs on {state.host}:{state.port} for `cim serve` "
                f"(pid {state.owner_pid}); stop that one first"
            )
        self._stop()

    def _write(self, config: FrontConfig, text: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        for name in _TEMP_DIRS:
            folder = self.dir / "temp" / name
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if config.user and os.geteuid() == 0:
                shutil.chown(folder, config.user)
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.config_file)

    def _run(self, nginx: Path, *args: str, what: str) -> None:
        cmd = [str(nginx), "-p", str(self.dir), "-c", str(self.config_file), *args]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        except subprocess.TimeoutExpired as exc:
            raise FrontError(f"{what} timed out") from exc
        if result.returncode != 0:
            lines = [line for line in (result.stderr + self._log_tail()).splitlines() if line.strip()]
            emerg = [line.split("] ", 1)[-1] for line in lines if "[emerg]" in line]
            reason = emerg[-1] if emerg else lines[-1] if lines else f"exit {result.returncode}"
            raise FrontError(f"{what} failed: {reason}")

    def _spawn(self, nginx: Path) -> subprocess.Popen[bytes]:
        # A child in the caller's session ("daemon off"), like the bare nginx the benchmark compares with: a
        # detached daemon gets its own scheduler autogroup, which on a loaded machine skews the comparison.
        with open(self.dir / "startup.log", "wb") as startup:
            return subprocess.Popen(
                [str(nginx), "-p", str(self.dir), "-c", str(self.config_file), "-g", "daemon off;"],
                stdin=subprocess.DEVNULL,
                stdout=startup,
                stderr=startup,
            )

    def _log_tail(self) -> str:
        try:
            return "\n" + "\n".join(self.error_log.read_text(encoding="utf-8", errors="replace").splitlines()[-3:])
        except OSError:
            return ""

    def _wait_started(self, config: FrontConfig, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "[::]") else config.host.strip("[]")
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                startup = (self.dir / "startup.log").read_text(encoding="utf-8", errors="replace")
                lines = [line for line in (startup + self._log_tail()).splitlines() if line.strip()]
                emerg = [line.split("] ", 1)[-1] for line in lines if "[emerg]" in line]
                reason = emerg[-1] if emerg else lines[-1] if lines else f"exit {proc.returncode}"
                raise FrontError(f"starting nginx failed: {reason}")
            pid = self._master_pid()
            if pid is not None:
                with contextlib.suppress(OSError), socket.create_connection((host, config.port), timeout=1):
                    return pid
            time.sleep(0.05)
        raise FrontError(
            f"nginx did not answer on {config.host}:{config.port} within {timeout:.0f} s{self._log_tail()}"
        )

    def _kill_started(self) -> None:
        pid = self._master_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            self._wait_gone(pid, 10)

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(ChildProcessError):  # reap it when it is our child (no zombie left)
                os.waitpid(pid, os.WNOHANG)
            if not _alive(pid):
                break
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _stop(self) -> bool:
        pid = self._master_pid()
        if pid is None:
            self._clean(all_files=False)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        if not self._wait_gone(pid, 30):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(pid, 10):
                raise FrontError(f"nginx (pid {pid}) did not stop")
        self._clean(all_files=False)
        return True

    def _clean(self, *, all_files: bool) -> None:
        """Remove the runtime files (config, pid, state, temporary folders); with ``all_files`` the folder."""
        if all_files:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        runtime = (self.config_file, self.pid_file, self.state_file, self.config_file.with_suffix(".tmp"))
        for path in (*runtime, self.dir / "startup.log"):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.dir / "temp", ignore_errors=True)
