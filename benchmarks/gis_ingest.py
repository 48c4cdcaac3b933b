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

import psycopg


def _server_url() -> str:
    from cim.db.cluster import PrivateCluster
    from cim.db.engine import connect_url

    external = os.environ.get("DATABASE_URL")
    if external:
        base = connect_url(external.split("?")[0]).rpartition("/")[0]
        return base + "/postgres"
    data_dir = Path(os.environ.get("CIM_DATA_DIR", Path(__file__).resolve().parents[1] / ".cim"))
    return PrivateCluster(data_dir).up().rpartition("/")[0] + "/postgres"


def run_one(size: int, db_url: str, workdir: Path) -> dict[str, Any]:
    """Generate ``size`` buildings, ingest every zone file, return timings and counts (in this process)."""
    from cim.db.engine import make_engine
    from cim.settings import Settings
    from ingest.vector import ingest_vector
    from sample_models.district import generate_district

    started = time.perf_counter()
    files = generate_district(workdir / f"n{size}", buildings=size, seed=11)
    generated = time.perf_counter() - started
    engine = make_engine(db_url)
    settings = Settings(data_dir=workdir / "data", database_url=db_url)
    stored = read = 0
    t0 = time.perf_counter()
    per_file = []
    for path in files.zone_files:
        report = ingest_vector(engine, path, settings, layer="buildings")
        stored += report.stored
        read += report.read
        per_file.append({"file": path.name, "stored": report.stored, "wall_time_s": report.wall_time_s})
    elapsed = time.perf_counter() - t0
    with engine.connect() as conn:
        live = conn.exec_driver_sql("SELECT count(*) FROM building WHERE valid_to IS NULL").scalar()
    engine.dispose()
    return {
        "size": size,
        "read": read,
        "stored": stored,
        "live_rows": live,
        "generate_s": round(generated, 2),
        "ingest_s": round(elapsed, 2),
        "buildings_per_s": round(stored / elapsed),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "files": per_file,
    }


def _child(size: int, workdir: Path) -> dict[str, Any]:
    from cim.db.cluster import ensure_extensions
    from cim.db.migrate import upgrade_to_head

    server = _server_url()
    name = f"cim_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.rpartition("/")[0] + "/" + name
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            ensure_extensions(conn)
        upgrade_to_head(url)
        return run_one(size, url, workdir)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
                f"(generation {result['generate_s']:.2f} s, {len(result['files'])} zone files)"
            )
            print("  " + json.dumps(result["files"], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
