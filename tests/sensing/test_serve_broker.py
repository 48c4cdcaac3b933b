"""``cim serve`` and the private broker: one it started is stopped with it, one it found running is left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cim.localservice import free_port
from cim.sensing.broker import PrivateBroker
from cim.settings import Settings
from tests.sensing.conftest import wait_until

pytestmark = pytest.mark.xdist_group("live-server")


def mosquittos_of(data_dir: Path) -> list[int]:
    """PIDs of every mosquitto process running with this data directory's configuration."""
    config = str(PrivateBroker(data_dir).config_file)
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = proc.joinpath("cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"mosquitto") and config.encode() in args:
            found.append(int(proc.name))
    return found


def _subscribed(port: int, proc: subprocess.Popen[bytes], log_path: Path) -> bool:
    """Whether the service on ``port`` answers and its MQTT subscriber is connected."""
    if proc.poll() is not None:
        raise AssertionError(f"cim serve ended: {log_path.read_text()[-2000:]}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sensors/status", timeout=5) as r:
            return bool(json.loads(r.read())["subscriber"]["connected"])
    except (urllib.error.URLError, ConnectionError, TimeoutError, TypeError):
        return False


def _serve_until(settings: Settings, tmp_path: Path, stop_signal: signal.Signals) -> tuple[int, list[int]]:
    """Run ``cim serve`` (granian, one worker) until its subscriber is connected, then send ``stop_signal``;
    return its exit code and the mosquitto processes of its data directory seen while it ran."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": str(settings.database_url),
        "CIM_DATA_DIR": str(settings.data_path),
        "CIM_API_ACCESS_LOG": "false",
    }
    env.pop("CIM_SENSING_MQTT", None)  # the default of ``cim serve``: MQTT on
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        command = [sys.executable, "-m", "cim", "serve", "--port", str(port), "--workers", "1"]
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            wait_until(lambda: _subscribed(port, proc, log_path), timeout=240, what="cim serve's MQTT subscriber")
            running = mosquittos_of(settings.data_path)
            proc.send_signal(stop_signal)
            return proc.wait(timeout=60), running
        finally:
            if proc.poll() is None:  # a failed test: its workers too, lest one start the broker again later
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_the_broker_it_started(
    settings: Settings, engine: Engine, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    assert mosquittos_of(settings.data_path) == []
    try:
        code, running = _serve_until(settings, tmp_path, stop_signal)
        assert len(running) == 1, "cim serve started one broker for its data directory"
        assert code in (0, 1, 128 + stop_signal), (code, (tmp_path / "serve.log").read_text()[-2000:])
        assert mosquittos_of(settings.data_path) == [], "the broker cim serve started outlived it"
        assert not PrivateBroker(settings.data_path).status().running
    finally:
        PrivateBroker(settings.data_path).down()  # when the test fails: leave no broker behind


def test_serve_leaves_a_running_broker_running(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    broker = PrivateBroker(settings.data_path)
    broker.up()
    try:
        before = mosquittos_of(settings.data_path)
        code, running = _serve_until(settings, tmp_path, signal.SIGTERM)
        assert code in (0, 1, 128 + signal.SIGTERM), code
        assert running == before and len(before) == 1
        assert mosquittos_of(settings.data_path) == before, "cim serve stopped a broker it had not started"
        assert broker.status().running
    finally:
        broker.down()
    assert mosquittos_of(settings.data_path) == []
