"""The private MQTT broker: Mosquitto from the OS packages, started and stopped like the private PostgreSQL.

Everything lives in ``$CIM_DATA_DIR/mosquitto/``: the configuration, a password file with two generated
users (the platform, which may read and write every topic, and a publisher for gateways and local tools,
which may only publish observations and read ``v1.1/#``), the ACL, the persistence database and the log.
The broker listens on a free loopback port; anonymous clients are refused. Persistence is on and saved
every second, so queued QoS 1 messages of the platform's persistent session survive a broker restart.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cim.localservice import free_port, live_pid, log_tail, pid_from_file, port_is_free, wait_for_port
from cim.localstate import exclusive_lock, read_json_state, write_json_state
from cim.sensing.errors import BrokerError

PLATFORM_USER = "cim-platform"
PUBLISHER_USER = "cim-publisher"
DEFAULT_PORT = 18830
_HINT = "install the Debian package mosquitto (`make setup` does)"


@dataclass(frozen=True)
class BrokerState:
    """What ``broker.json`` records: the port and the generated credentials (file mode 0600)."""

    port: int
    platform_password: str
    publisher_password: str
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class BrokerStatus:
    """Whether the broker runs, where, and a publisher's credentials for local tools."""

    running: bool
    host: str
    port: int | None
    pid: int | None
    publisher_user: str
    publisher_password: str | None
    config: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields (``cim broker status --json``)."""
        return asdict(self)


def find_mosquitto() -> tuple[Path, Path]:
    """The ``mosquitto`` and ``mosquitto_passwd`` executables."""
    broker = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    passwd = shutil.which("mosquitto_passwd")
    if broker is None or passwd is None:
        raise BrokerError(f"Mosquitto (mosquitto, mosquitto_passwd) not found: {_HINT}")
    return Path(broker), Path(passwd)


class PrivateBroker:
    """The private Mosquitto broker of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir.expanduser().resolve() / "mosquitto"
        self.state_file = self.dir / "broker.json"
        self.config_file = self.dir / "mosquitto.conf"
        self.pid_file = self.dir / "mosquitto.pid"
        self.log_file = self.dir / "mosquitto.log"

    # -- public operations ---------------------------------------------------------------------------

    def up(self) -> BrokerState:
        """Start the broker when it is not running (configuring it on first use); return its state."""
        return self.ensure()[0]

    def ensure(self) -> tuple[BrokerState, bool]:
        """Like :meth:`up`, and whether this call started the broker (False: it was running already)."""
        with self._lock():
            state = self._state() or self._initialise()
            if self._pid() is not None:
                return state, False
            return self._start(state), True

    @contextlib.contextmanager
    def running(self) -> Iterator[BrokerState]:
        """The broker for the duration of the block: started when none runs, and then stopped at the end
        (also on an exception or ``SystemExit``); a broker that was running already is left running."""
        state, started = self.ensure()
        try:
            yield state
        finally:
            if started:
                self.down()

    def down(self) -> bool:
        """Stop the broker (it saves its persistence database first). False when it was not running."""
        with self._lock():
            pid = self._pid()
            if pid is None:
                return False
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while self._alive(pid):
                if time.monotonic() > deadline:
                    raise BrokerError(f"mosquitto (pid {pid}) did not stop within 30 s")
                time.sleep(0.05)
            self.pid_file.unlink(missing_ok=True)
            return True

    def status(self) -> BrokerStatus:
        """Running or not, host, port, pid and the publisher's credentials."""
        state = self._state()
        pid = self._pid()
        return BrokerStatus(
            running=pid is not None,
            host=state.host if state else "127.0.0.1",
            port=state.port if state else None,
            pid=pid,
            publisher_user=PUBLISHER_USER,
            publisher_password=state.publisher_password if state else None,
            config=str(self.config_file),
        )

    def state(self) -> BrokerState | None:
        """The recorded state (port, credentials), or None before the first ``up``."""
        return self._state()

    # -- internals -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with exclusive_lock(self.dir / ".broker.lock"):
            yield

    def _state(self) -> BrokerState | None:
        try:
            saved = read_json_state(self.state_file)
            return None if saved is None else BrokerState(**saved)
        except (ValueError, TypeError) as exc:
            raise BrokerError(f"{self.state_file} is unreadable ({exc}); move it away to configure anew") from exc

    def _save(self, state: BrokerState) -> None:
        write_json_state(self.state_file, asdict(state), mode=0o600)

    def _initialise(self) -> BrokerState:
        find_mosquitto()
        state = BrokerState(
            port=free_port(DEFAULT_PORT),
            platform_password=secrets.token_urlsafe(24),
            publisher_password=secrets.token_urlsafe(24),
        )
        self._save(state)
        return state

    def _write_files(self, state: BrokerState) -> None:
        _broker, passwd = find_mosquitto()
        (self.dir / "data").mkdir(exist_ok=True, mode=0o700)
        password_file = self.dir / "passwd"
        password_file.unlink(missing_ok=True)
        password_file.touch(mode=0o600)
        for user, password in ((PLATFORM_USER, state.platform_password), (PUBLISHER_USER, state.publisher_password)):
            result = subprocess.run(
                [str(passwd), "-b", str(password_file), user, password], capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                raise BrokerError(f"mosquitto_passwd failed: {(result.stderr or result.stdout).strip()}")
        acl = self.dir / "acl"
        acl.write_text(
            f"""# Written by the CIM platform.
user {PLATFORM_USER}
topic readwrite #

user {PUBLISHER_USER}
topic write v1.1/+/Observations
topic write v1.1/Observations
topic read v1.1/#
""",
            encoding="utf-8",
        )
        acl.chmod(0o600)
        run_as = "user root\n" if os.geteuid() == 0 else ""
        # As root the broker keeps root: it must reach a data directory that may sit inside /root or a
        # private /tmp folder, like the rest of the platform's files.
        self.config_file.write_text(
            f"""# Written by the CIM platform: loopback only, no anonymous clients, persistent QoS 1 sessions.
{run_as}pid_file {self.pid_file}
per_listener_settings false
listener {state.port} 127.0.0.1
allow_anonymous false
password_file {password_file}
acl_file {acl}
persistence true
persistence_location {self.dir / "data"}/
autosave_interval 1
persistent_client_expiration 30d
max_inflight_messages 0
max_queued_messages 0
max_queued_bytes 0
max_packet_size 1048576
set_tcp_nodelay true
log_dest file {self.log_file}
log_type error
log_type warning
log_type notice
connection_messages false
""",
            encoding="utf-8",
        )

    def _start(self, state: BrokerState) -> BrokerState:
        broker, _passwd = find_mosquitto()
        if not port_is_free(state.port):
            state = BrokerState(free_port(), state.platform_password, state.publisher_password, state.host)
            self._save(state)
        self._write_files(state)
        self.pid_file.unlink(missing_ok=True)
        result = subprocess.run(
            [str(broker), "-c", str(self.config_file), "-d"], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise BrokerError(f"mosquitto did not start: {(result.stderr or result.stdout).strip()}; {self._tail()}")
        if not wait_for_port(state.port, 15):
            raise BrokerError(f"mosquitto does not accept connections on port {state.port}; {self._tail()}")
        return state

    def _tail(self) -> str:
        return "log: " + (log_tail(self.log_file) or "none")

    def _pid(self) -> int | None:
        return self._alive(pid_from_file(self.pid_file))

    def _alive(self, pid: int | None) -> int | None:
        # A reused PID after a crash belongs to another program: then the pid file is stale.
        return live_pid(pid, "mosquitto", str(self.config_file))
