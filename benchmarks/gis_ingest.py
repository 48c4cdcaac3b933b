"""Benchmark: synthetic building footprints from GeoPackage into PostGIS, end to end.

For each size (default 100,000 and 1,000,000) it generates Hubei-wide footprints (one GeoPackage per
CGCS2000 Gauss–Krüger zone, EPSG:4545–4548, Chinese attribute names), then times ``ingest_vector`` on them
into a dedicated database created (and dropped) on the same PostGIS server: Arrow read, vectorised
transform to EPSG:4490, repair check, metric areas, binary COPY of EWKB, GiST index, commit — with the
server's normal durability settings. Each size runs in a fresh child process so its peak RSS is its own
(the PostgreSQL server's memory is not included).

``python -m benchmarks.gis_ingest [--sizes 100000 1000000] [--keep-files DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sample_models.district import generate_district


def _server_url() -> str:
    from cim.db.cluster import PrivateCluster
    from cim.db.engine import connect_url

    external = os.environ.get("DATABASE_URL")
    if external:
        base = connect_url(external.split("?")[0]).rpartition("/")[0]
        return base + "/postgres"
    data_dir = Path(os.environ.get("CIM_DATA_DIR", Path(__file__).resolve().parents[1] / ".cim"))
    return PrivateCluster(data_dir).up().rpartition("/")[0] + "/postgres"


def _backend_cpu_s(engine: Any) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each server backend of the benchmark database."""
    with engine.connect() as conn:
        pids = [
            r[0] for r in conn.exec_driver_sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ]
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def _peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). ``ru_maxrss`` is not used: Linux carries it over from the
    parent across fork/exec, so it would report the generator's memory, not the ingest's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_one(size: int, db_url: str, workdir: Path) -> dict[str, Any]:
    """Generate ``size`` buildings, ingest every zone file, return timings and counts (in this process)."""
    from cim.db.engine import make_engine
    from cim.settings import Settings
    from ingest.vector import ingest_vector

    zone_files = sorted((workdir / f"n{size}").glob("hubei_buildings_*.gpkg"))
    engine = make_engine(db_url)
    settings = Settings(data_dir=workdir / "data", database_url=db_url)
    stored = read = 0
    per_file = []
    server_cpu = 0.0
    client_cpu = 0.0
    elapsed = 0.0
    for path in zone_files:
        before = _backend_cpu_s(engine)
        c0 = _own_cpu_s()
        t0 = time.perf_counter()
        report = ingest_vector(engine, path, settings, layer="buildings")
        elapsed += time.perf_counter() - t0
        client_cpu += _own_cpu_s() - c0
        after = _backend_cpu_s(engine)
        server_cpu += sum(v - before.get(pid, 0.0) for pid, v in after.items())
        stored += report.stored
        read += report.read
        per_file.append({"file": path.name, "stored": report.stored, "wall_time_s": report.wall_time_s})
    with engine.connect() as conn:
        live = conn.exec_driver_sql("SELECT count(*) FROM building WHERE valid_to IS NULL").scalar()
    engine.dispose()
    return {
        "size": size,
        "read": read,
        "stored": stored,
        "live_rows": live,
        "ingest_s": round(elapsed, 2),
        "buildings_per_s": round(stored / elapsed),
        "client_cpu_s": round(client_cpu, 2),
        "server_cpu_s": round(server_cpu, 2),
        "load_avg_1m": os.getloadavg()[0],
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "files": per_file,
    }


def _child(size: int, workdir: Path) -> dict[str, Any]:
    from cim.db.scratch import create_database, drop_database

    server = _server_url()
    name = f"cim_bench_{secrets.token_hex(4)}"
    try:
        return run_one(size, create_database(server, name), workdir)
    finally:
        drop_database(server, name)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark for each size in a child process and print one line of figures per size."""
    parser = argparse.ArgumentParser(description="GIS ingest benchmark (buildings/s, peak RSS)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep-files", type=Path, default=None, help="directory for the generated files")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(args.child, args.workdir)))
        return 0
    with tempfile.TemporaryDirectory(prefix="cim_gis_bench_") as tmp:
        workdir = args.keep_files or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            # Generated here, so that the child's peak RSS is the ingest's alone.
            started = time.perf_counter()
            generate_district(workdir / f"n{size}", buildings=size, seed=11)
            generated = time.perf_counter() - started
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.gis_ingest", "--child", str(size), "--workdir", str(workdir)],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{result['stored']:>9,} buildings: ingest {result['ingest_s']:6.2f} s = "
                f"{result['buildings_per_s']:>8,} buildings/s, peak RSS {result['peak_rss_mib']:7.1f} MiB "
                f"(generation {generated:.2f} s, {len(result['files'])} zone files)"
            )
            cpu = result["client_cpu_s"] + result["server_cpu_s"]
            print(
                f"  CPU: client {result['client_cpu_s']:.2f} s + database backend {result['server_cpu_s']:.2f} s "
                f"= {result['stored'] / cpu:,.0f} buildings per CPU-second (machine load average "
                f"{result['load_avg_1m']:.1f} on {os.cpu_count()} cores during the run)"
            )
            print("  " + json.dumps(result["files"], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
