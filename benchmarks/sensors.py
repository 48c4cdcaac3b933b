"""IoT sensing throughput: observations/s through MQTT and through Data Array HTTP, publish-to-readable
latency, the latest-value query for 10,000 datastreams, and peak RSS.

Runs on loopback with real services: a fresh migrated database on the private cluster (or DATABASE_URL's
server), a private Mosquitto in a temporary data directory, the platform's MQTT subscriber (in this process,
as the service runs it), publisher processes with paho-mqtt (QoS 1), and ``cim serve`` (granian) for the
Data Array posts.

    .venv/bin/python benchmarks/sensors.py [--mqtt 100000] [--http 200000] [--publishers 2] [--json]

Targets: ≥ 20,000 observations/s each way; latest values of 10,000 datastreams p50 < 100 ms. Figures on a
shared 2-core machine are pessimistic (publishers, broker, subscriber and PostgreSQL share the cores).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serve_tiles import bench_database, free_port, wait_http  # noqa: E402

DATASTREAMS = 10_000
TARGET_RATE = 20_000.0
TARGET_LATEST_P50_MS = 100.0
BASE_TIME = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    """The private cluster's postmaster and its children (empty with an external DATABASE_URL)."""
    pid_file = Path(os.environ.get("CIM_DATA_DIR", ROOT / ".cim")) / "pgdata" / "postmaster.pid"
    if os.environ.get("DATABASE_URL") or not pid_file.exists():
        return []
    return _tree(int(pid_file.read_text().split()[0]))


class CpuMeter:
    """CPU seconds spent by each group of processes during a phase (load-independent cost per observation).

    Groups: this process (the MQTT subscriber's threads), waited-for children (publishers, HTTP clients),
    and named process trees (the broker, PostgreSQL with its backends, ``cim serve`` with its workers), whose
    processes are listed again at the end so that ones started meanwhile count from zero.
    """

    def __init__(self, trees: dict[str, Callable[[], list[int]]]) -> None:
        self.trees = trees
        self.start = self._sample()

    def _sample(self) -> dict[str, dict[int, float]]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = {"this process": {0: time.process_time()}, "child processes": {0: children.ru_utime + children.ru_stime}}
        for name, pids in self.trees.items():
            out[name] = {p: _cpu_s(p) for p in pids()}
        return out

    def stop(self, observations: int, extra: dict[str, float] | None = None) -> dict[str, Any]:
        """CPU seconds per group (with ``extra`` groups measured elsewhere) and µs per observation, with the
        rate 2 idle cores could sustain."""
        end = self._sample()
        spent = {k: round(sum(v - self.start[k].get(p, 0.0) for p, v in end[k].items()), 2) for k in end}
        spent.update({k: round(v, 2) for k, v in (extra or {}).items()})
        total = sum(spent.values())
        us = 1e6 * total / max(observations, 1)
        return {
            "cpu_s": spent,
            "cpu_us_per_observation": round(us, 1),
            "cpu_bound_rate_on_2_idle_cores": round(2e6 / us) if us > 0 else None,
        }


def provision(url: str, n: int) -> None:
    """``n`` Things, each with a Location, a FeatureOfInterest and one numeric Datastream (bulk SQL)."""
    import psycopg

    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute(
            "INSERT INTO sta_sensor (id, name, encoding_type, metadata) VALUES (1, 'bench', 'text/html', 'm');"
            "INSERT INTO sta_observed_property (id, name, definition) VALUES (1, 'water level', 'urn:wl');"
        )
        script = """
            INSERT INTO sta_thing (id, name) SELECT i, 'thing ' || i FROM generate_series(1, %(n)s) i;
            INSERT INTO sta_location (id, name, encoding_type, location, geom)
            SELECT i, 'loc ' || i, 'application/geo+json',
                   jsonb_build_object('type', 'Point', 'coordinates',
                                      jsonb_build_array(114.2 + (i %% 100) * 0.001, 30.5 + (i / 100) * 0.001)),
                   ST_SetSRID(ST_MakePoint(114.2 + (i %% 100) * 0.001, 30.5 + (i / 100) * 0.001), 4490)
            FROM generate_series(1, %(n)s) i;
            INSERT INTO sta_thing_location SELECT i, i FROM generate_series(1, %(n)s) i;
            INSERT INTO sta_feature_of_interest (id, name, encoding_type, feature, geom, location_id)
            SELECT id, name, encoding_type, location, geom, id FROM sta_location;
            INSERT INTO sta_datastream (id, name, observation_type, unit_of_measurement, thing_id, sensor_id,
                                        observed_property_id)
            SELECT i, 'ds ' || i, 'http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement',
                   '{"name": "metre", "symbol": "m", "definition": "m"}', i, 1, 1
            FROM generate_series(1, %(n)s) i;
            INSERT INTO sensor_alarm_rule (name, kind, threshold, observed_property_id)
            VALUES ('over 5 m', 'over', 5.0, 1);
            """
        for statement in filter(None, (x.strip() for x in script.split(";"))):
            conn.execute(statement, {"n": n})
        for table in ("sta_thing", "sta_location", "sta_feature_of_interest", "sta_datastream"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {n})")
        conn.commit()


def _publisher_lines(first: int, count: int, n_ds: int, offset_days: int = 0) -> bytes:
    """``count`` observations (one JSON document a line) for the ``v1.1/Observations`` create topic."""
    out = []
    base = BASE_TIME + dt.timedelta(days=offset_days)
    for k in range(first, first + count):
        ds = 1 + k % n_ds
        t = (base + dt.timedelta(seconds=k // n_ds)).isoformat().replace("+00:00", "Z")
        out.append(f'{{"Datastream":{{"@iot.id":{ds}}},"phenomenonTime":"{t}","result":{(k % 400) / 100:.3f}}}')
    return ("\n".join(out) + "\n").encode()


def _start_publisher(host: str, port: int, password: str, client_id: str) -> subprocess.Popen[bytes]:
    """``mosquitto_pub`` (the Mosquitto project's C client) publishing each stdin line with QoS 1."""
    login = ["-h", host, "-p", str(port), "-u", "cim-publisher", "-P", password, "-i", client_id]
    return subprocess.Popen(
        ["mosquitto_pub", *login, "-q", "1", "-M", "1000", "-l", "-t", "v1.1/Observations"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )


def count_observations(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM sta_observation").fetchone()
        return int(row[0]) if row else 0


def _feed(proc: subprocess.Popen[bytes], data: bytes, rate: float | None) -> None:
    """Write ``data`` to a publisher's stdin: all at once, or paced at ``rate`` lines per second."""
    if rate is None:
        proc.communicate(data)
        return
    assert proc.stdin is not None
    lines = data.splitlines(keepends=True)
    step = max(int(rate / 50), 1)  # one chunk every 20 ms
    t0 = time.perf_counter()
    for n, i in enumerate(range(0, len(lines), step)):
        proc.stdin.write(b"".join(lines[i : i + step]))
        proc.stdin.flush()
        time.sleep(max(t0 + (n + 1) / 50 - time.perf_counter(), 0))
    proc.stdin.close()
    proc.wait()


def bench_mqtt(
    url: str, data_dir: Path, total: int, publishers: int, *, rate: float | None = None, offset_days: int = 0
) -> dict[str, Any]:
    """Publish ``total`` observations from ``publishers`` processes (as fast as they go, or at ``rate``
    observations/s in all); time until all are stored; probe the latency publish → readable meanwhile."""
    import paho.mqtt.client as mqtt
    import psycopg
    from paho.mqtt.enums import CallbackAPIVersion

    from cim.db.engine import make_engine
    from cim.sensing.broker import PLATFORM_USER, PrivateBroker
    from cim.sensing.subscriber import Subscriber

    broker = PrivateBroker(data_dir)
    state = broker.up()
    engine = make_engine(url, pool_size=2)
    sub = Subscriber(engine, state.host, state.port, PLATFORM_USER, state.platform_password, "bench-subscriber")
    sub.start()
    # Latency probes: their own datastreams (the last 100), 50 per second during the load, read by LISTEN.
    probe_ds = list(range(DATASTREAMS - 99, DATASTREAMS + 1))
    sent: dict[tuple[int, str], float] = {}
    seen: dict[tuple[int, str], float] = {}
    stop = threading.Event()
    done = threading.Event()

    def listen() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("LISTEN cim_sensing")
            while not done.is_set():
                for note in conn.notifies(timeout=0.5):
                    now = time.perf_counter()
                    for item in json.loads(note.payload):
                        key = (item["d"], dt.datetime.fromisoformat(item["t"]).isoformat())
                        if key in sent and key not in seen:
                            seen[key] = now

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)
    probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe", protocol=mqtt.MQTTv311)
    probe.username_pw_set("cim-publisher", state.publisher_password)
    probe.connect(state.host, state.port)
    probe.loop_start()

    def probing() -> None:
        i = 0
        while not stop.is_set():
            ds = probe_ds[i % len(probe_ds)]
            t = BASE_TIME + dt.timedelta(days=20 + offset_days, seconds=i)
            key = (ds, t.isoformat())
            sent[key] = time.perf_counter()
            probe.publish(
                f"v1.1/Datastreams({ds})/Observations",
                json.dumps({"phenomenonTime": t.isoformat(), "result": 1.0}),
                qos=1,
            )
            i += 1
            stop.wait(0.02)

    n_load = DATASTREAMS - len(probe_ds)
    per = total // publishers
    payloads = [_publisher_lines(p * per, per, n_load, offset_days) for p in range(publishers)]
    procs = [
        _start_publisher(state.host, state.port, state.publisher_password, f"bench-{p}") for p in range(publishers)
    ]
    broker_pid = broker.status().pid
    meter = CpuMeter({"broker": lambda: [broker_pid] if broker_pid else [], "postgres": postgres_pids})
    started = time.perf_counter()
    prober = threading.Thread(target=probing, daemon=True)
    prober.start()
    each = None if rate is None else rate / publishers
    feeders = [threading.Thread(target=_feed, args=(p, data, each)) for p, data in zip(procs, payloads, strict=True)]
    for f in feeders:
        f.start()
    for f in feeders:
        f.join()
    if any(p.returncode != 0 for p in procs):
        raise RuntimeError("mosquitto_pub failed")
    published_s = time.perf_counter() - started
    stop.set()
    prober.join()
    expected = per * publishers
    while sub.counters.stored < expected + len(sent) and time.perf_counter() - started < 600:
        time.sleep(0.02)
    stored_s = time.perf_counter() - started
    cpu = meter.stop(expected)
    time.sleep(1.0)
    done.set()
    latencies = sorted((seen[k] - sent[k]) * 1000 for k in seen)
    counters = sub.counters.to_dict()
    sub.stop()
    probe.loop_stop()
    broker.down()
    engine.dispose()
    return {
        "observations": expected,
        "publish_s": round(published_s, 2),
        "stored_s": round(stored_s, 2),
        "observations_per_s": round(expected / stored_s),
        "latency_probes": len(latencies),
        "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1) if latencies else None,
        "subscriber": counters,
        "cpu": cpu,
    }


def _http_client(
    base: str, key: str, first_block: int, blocks: int, per_block: int, n_ds: int, q: Any, go: Any
) -> None:
    """Post ``blocks`` Data Array bodies, built before ``go`` is set (as the MQTT payloads are built before
    publishing: the figure is the platform's, not the load generator's JSON encoding); put the count."""
    import httpx

    bodies = []
    for b in range(first_block, first_block + blocks):
        by_ds: dict[int, list[list[Any]]] = {}
        for k in range(b * per_block, (b + 1) * per_block):
            ds = 1 + k % n_ds
            t = (BASE_TIME + dt.timedelta(days=10, seconds=k // n_ds)).isoformat().replace("+00:00", "Z")
            by_ds.setdefault(ds, []).append([t, (k % 400) / 100])
        body = [
            {"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"], "dataArray": rows}
            for ds, rows in by_ds.items()
        ]
        bodies.append(json.dumps(body).encode())
    q.put("ready")
    go.wait()
    cpu0 = time.process_time()
    posted = 0
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=300) as http:
        for content in bodies:
            r = http.post("/sta/v1.1/CreateObservations", content=content)
            r.raise_for_status()
            posted += sum(1 for x in r.json() if x != "error")
    q.put((posted, time.process_time() - cpu0))


def bench_http(url: str, data_dir: Path, total: int, clients: int, workers: int) -> dict[str, Any]:
    """Data Array posts (5,000 observations each) from ``clients`` processes to ``cim serve``."""
    from cim.api.security import new_api_key
    from cim.db.engine import make_engine

    engine = make_engine(url)
    key = new_api_key(engine, name="bench", role="sensor")[1]
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CIM_DATA_DIR": str(data_dir),
        "CIM_SENSING_MQTT": "false",
        "CIM_API_ACCESS_LOG": "false",
    }
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/cim"), "-q", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/sta/v1.1", timeout=300)  # a loaded machine may take minutes to start the workers
        per_block = 5000
        blocks = total // per_block
        q: Any = mp.Queue()
        go: Any = mp.Event()
        per_client = blocks // clients
        procs = [
            mp.Process(target=_http_client, args=(base, key, c * per_client, per_client, per_block, DATASTREAMS, q, go))
            for c in range(clients)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            q.get()  # bodies built
        meter = CpuMeter({"cim serve": lambda: _tree(server.pid), "postgres": postgres_pids})
        started = time.perf_counter()
        go.set()
        reports = [q.get() for _ in procs]
        elapsed = time.perf_counter() - started
        posted = sum(n for n, _cpu in reports)
        cpu = meter.stop(posted, {"HTTP clients": sum(c for _n, c in reports)})  # before the join: not counted twice
        for p in procs:
            p.join()
        latest = time_latest_http(base)
        server_rss = sum(peak_rss_mb(pid) for pid in _tree(server.pid))
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for pid in _tree(server.pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            server.wait()
    return {
        "observations": posted,
        "seconds": round(elapsed, 2),
        "observations_per_s": round(posted / elapsed),
        "latest_http": latest,
        "server_peak_rss_mb": round(server_rss, 1),
        "cpu": cpu,
    }


def _tree(pid: int) -> list[int]:
    out = [pid]
    for child in Path("/proc").glob("[0-9]*"):
        try:
            if int(child.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out += _tree(int(child.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def time_latest_db(url: str, repeats: int = 20) -> dict[str, float]:
    """p50/p90 (ms) of the latest values of every datastream (10,000 rows) straight from the database."""
    from cim.db.engine import make_engine
    from cim.db.sensing import latest_values, sensor_overview_geojson

    engine = make_engine(url)
    out: dict[str, float] = {}
    with engine.connect() as conn:
        for name, fn in (("latest_values", latest_values), ("sensor_overview", sensor_overview_geojson)):
            times = []
            rows = 0
            for _ in range(repeats):
                t0 = time.perf_counter()
                rows = len(fn(conn))
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            out[f"{name}_size"] = rows  # rows, or characters of the GeoJSON text
            out[f"{name}_p50_ms"] = round(statistics.median(times), 1)
            out[f"{name}_p90_ms"] = round(times[int(len(times) * 0.9) - 1], 1)
    engine.dispose()
    return out


def time_latest_http(base: str, repeats: int = 10) -> dict[str, float]:
    """p50 (ms) of ``GET /sensors/latest`` (GeoJSON of every datastream with its latest value and status)."""
    import httpx

    times = []
    features = 0
    with httpx.Client(base_url=base, timeout=60) as http:
        for _ in range(repeats):
            t0 = time.perf_counter()
            r = http.get("/sensors/latest")
            times.append((time.perf_counter() - t0) * 1000)
            features = len(r.json()["features"])
    return {"features": features, "p50_ms": round(statistics.median(times), 1)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mqtt", type=int, default=100_000, help="observations published over MQTT")
    parser.add_argument("--http", type=int, default=200_000, help="observations posted as Data Array")
    parser.add_argument("--publishers", type=int, default=2, help="MQTT publisher processes")
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=5000,
        help="observations/s of the 6 s paced MQTT run (latency below saturation)",
    )
    parser.add_argument("--clients", type=int, default=2, help="HTTP client processes")
    parser.add_argument("--workers", type=int, default=2, help="cim serve workers")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    from cim.db.scratch import drop_database

    load_before = [round(x, 2) for x in os.getloadavg()]
    server, url, name = bench_database()
    report: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="cim-bench-sensors-") as tmp:
            data = Path(tmp) / "data"
            data.mkdir()
            provision(url, DATASTREAMS)
            report["datastreams"] = DATASTREAMS
            report["mqtt"] = bench_mqtt(url, data, args.mqtt, args.publishers)
            report["mqtt_paced"] = bench_mqtt(
                url, data, int(args.paced_rate * 6), args.publishers, rate=args.paced_rate, offset_days=5
            )
            report["http_data_array"] = bench_http(url, data, args.http, args.clients, args.workers)
            report["latest_db"] = time_latest_db(url)
            report["stored_total"] = count_observations(url)
            report["bench_process_peak_rss_mb"] = round(peak_rss_mb(), 1)
    finally:
        drop_database(server, name)
    report["load_average"] = {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]}
    report["targets"] = {"observations_per_s": TARGET_RATE, "latest_p50_ms": TARGET_LATEST_P50_MS}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    _print(report)
    return 0


def _print(report: dict[str, Any]) -> None:
    m, h, lat = report["mqtt"], report["http_data_array"], report["latest_db"]
    ok = lambda good: "ok" if good else "BELOW TARGET"  # noqa: E731

    def cpu(part: dict[str, Any]) -> str:
        c = part["cpu"]
        groups = ", ".join(f"{k} {v} s" for k, v in c["cpu_s"].items())
        return (
            f"                     CPU {c['cpu_us_per_observation']} µs/observation ({groups}); "
            f"CPU-bound rate on 2 idle cores ≈ {c['cpu_bound_rate_on_2_idle_cores']:,}/s"
        )

    print(f"load average         before {report['load_average']['before']}, after {report['load_average']['after']}")
    print(
        f"MQTT → stored        {m['observations_per_s']:>9,} obs/s  ({m['observations']:,} in {m['stored_s']} s, "
        f"published in {m['publish_s']} s) target ≥ {TARGET_RATE:,.0f}/s: {ok(m['observations_per_s'] >= TARGET_RATE)}"
    )
    print(cpu(m))
    print(
        f"publish → readable   p50 {m['latency_p50_ms']} ms, p99 {m['latency_p99_ms']} ms "
        f"({m['latency_probes']} probes during the unpaced MQTT load: queueing behind the backlog)"
    )
    pm = report["mqtt_paced"]
    print(
        f"publish → readable   p50 {pm['latency_p50_ms']} ms, p99 {pm['latency_p99_ms']} ms "
        f"({pm['latency_probes']} probes at a paced {pm['observations'] / 6:,.0f} obs/s; "
        f"stored {pm['observations_per_s']:,}/s)"
    )
    print(
        f"Data Array HTTP      {h['observations_per_s']:>9,} obs/s  ({h['observations']:,} in {h['seconds']} s) "
        f"target ≥ {TARGET_RATE:,.0f}/s: {ok(h['observations_per_s'] >= TARGET_RATE)}"
    )
    print(cpu(h))
    print(
        f"latest values 10,000 p50 {lat['latest_values_p50_ms']} ms (DB query), GET /sensors/latest p50 "
        f"{h['latest_http']['p50_ms']} ms (GeoJSON with status), target p50 < {TARGET_LATEST_P50_MS:.0f} ms: "
        f"{ok(lat['latest_values_p50_ms'] < TARGET_LATEST_P50_MS)}"
    )
    print(
        f"peak RSS             subscriber process {report['bench_process_peak_rss_mb']} MiB, "
        f"server {h['server_peak_rss_mb']} MiB (all workers)"
    )


if __name__ == "__main__":
    mp.set_start_method("spawn", force=True)
    sys.exit(main())
