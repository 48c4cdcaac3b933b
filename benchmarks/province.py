"""Benchmark: a synthetic Hubei province, ingest → 3D Tiles (meshopt) → health check → bbox queries, tile GETs.

The province (:func:`sample_models.province.generate_province` with ``context=True``): building footprints
over Hubei's four Gauss–Krüger zones (one GeoPackage each, EPSG:4545–4548), with districts, parcels,
facilities and a DEM in proportion. Each stage runs in its own process tree, started from here, into a
fresh database on the platform's PostGIS server (``DATABASE_URL`` or the private cluster; dropped at the
end unless ``--keep``):

1. ``ingest``: the DEM (``ingest_raster``), then every layer from all the zone files at once (``ingest_vectors``);
2. ``tiles``: ``cim tiles build province --layers buildings --compress meshopt --jobs 2`` (with metadata);
3. ``health``: ``run_health_check``, its coverage stage fanned out over ``--hc-workers`` backends (default 2;
   0: one backend);
4. ``serve``: ``cim serve``, then bbox queries (``/collections/buildings/items?bbox=…&limit=1000``) and
   GETs of random tile files from one HTTP client.

For each stage it prints the wall time of its work (the process's own wall time, start-up included, is in
the JSON as ``process_wall_s``), the rate, the peak RSS of the stage's process tree (sampled every
0.1 s, summed over the processes; the PostgreSQL server's own memory is not included), CPU seconds, the
database and tileset sizes and the cost per building (µs of wall time per building), each against its
target (issue 18) and, with ``--baseline RUN.json`` (the ``--json`` output of a 1,000,000-building run),
the cost against that run's (target ≤ 1.2×).

``python -m benchmarks.province [--buildings 10000000] [--json] [--baseline b1m.json] [--workdir DIR] [--keep]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
CIM = ROOT / ".venv" / "bin" / "cim"
TILESET = "province"
GIB = 1024**3
TARGETS = {
    "tiles_buildings_per_s": 100_000.0,
    "meshopt_bytes_per_building": 150.0,
    "ingest_buildings_per_s": 150_000.0,
    "stage_peak_rss_gib": 4.0,
    "cost_ratio_vs_baseline": 1.2,
}
"""Issue 18's targets (health check: see :func:`health_target_s`)."""


def health_target_s(buildings: int) -> float:
    """Health check target: ≤ 60 s at 1M and ≤ 10 min at 10M (60 s per million, never below 60 s)."""
    return max(60.0, 60.0 * buildings / 1_000_000)


# --------------------------------------------------------------------------------------------- processes
class TreeSampler:
    """Peak resident memory of a process and its descendants, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak_bytes = 0
        self.peak_single_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            sizes = []
            for p in procs:
                try:
                    sizes.append(p.memory_info().rss)
                except psutil.Error:
                    continue
            if sizes:
                self.peak_bytes = max(self.peak_bytes, sum(sizes))
                self.peak_single_bytes = max(self.peak_single_bytes, max(sizes))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_stage(name: str, cmd: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one stage's process to the end; its last stdout line is JSON (merged into the figures)."""
    cpu0 = _children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.Popen(list(cmd), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    out, err = proc.communicate()
    sampler.stop()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"stage {name} failed ({proc.returncode}):\n{err[-4000:]}")
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    try:
        data = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        data = json.loads(out[out.index("{") :])  # a pretty-printed JSON document
    return {
        **data,
        "process_wall_s": round(wall, 2),
        "cpu_s": round(_children_cpu_s() - cpu0, 2),
        "peak_rss_gib": round(sampler.peak_bytes / GIB, 3),
        "peak_rss_single_gib": round(sampler.peak_single_bytes / GIB, 3),
    }


def _child_cmd(stage: str, args: argparse.Namespace, db_url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.province",
        "--stage",
        stage,
        "--buildings",
        str(args.buildings),
        "--workdir",
        str(args.workdir),
        "--db",
        db_url,
        "--hc-workers",
        str(args.hc_workers),
        "--seed",
        str(args.seed),
    ]


# --------------------------------------------------------------------------------------------- stages
def stage_generate(args: argparse.Namespace) -> dict[str, Any]:
    """Write the province's GeoPackages and DEM into ``workdir/files``."""
    import numpy as np

    from sample_models.province import HUBEI_BOUNDS, generate_province

    t = time.perf_counter()
    (args.workdir / "files").mkdir(parents=True, exist_ok=True)
    files = generate_province(
        args.workdir / "files", args.buildings, np.random.default_rng(args.seed), HUBEI_BOUNDS, context=True
    )
    return {
        "seconds": round(time.perf_counter() - t, 2),
        "files_bytes": sum(p.stat().st_size for p in (args.workdir / "files").iterdir()),
        "counts": files.counts,
    }


def _files(args: argparse.Namespace) -> Any:
    from sample_models.sample_files import DistrictFiles

    out = args.workdir / "files"
    zone_files = sorted(out.glob("hubei_buildings_*.gpkg"))
    import pyogrio

    counts: dict[str, int] = {}
    for path in zone_files:
        epsg = path.stem.rsplit("_", 1)[1]
        for layer, _ in pyogrio.list_layers(path):
            counts[f"EPSG:{epsg}/{layer}"] = 1
    return DistrictFiles(out_dir=out, crs="per zone", dem=out / "hubei_dem.tif", zone_files=zone_files, counts=counts)


def _settings(args: argparse.Namespace, db_url: str) -> Any:
    from cim.settings import Settings

    return Settings(data_dir=args.workdir / "data", database_url=db_url)


def stage_ingest(args: argparse.Namespace) -> dict[str, Any]:
    """Ingest the DEM and every layer of the zone files, each layer from all four files in one
    ``ingest_vectors`` call (one dataset per file, one index rebuild); buildings timed on their own for the rate."""
    from itertools import groupby

    from cim.db.engine import make_engine
    from ingest.raster import ingest_raster
    from ingest.vector import ingest_vectors
    from sample_models.province import province_layers

    files = _files(args)
    settings = _settings(args, args.db)
    engine = make_engine(args.db)
    started = time.perf_counter()
    ingest_raster(engine, files.dem, settings, kind="dem")
    building_s = other_s = 0.0
    stored: dict[str, int] = {}
    for (source_layer, layer, kind), group in groupby(province_layers(files), key=lambda entry: entry[1:]):
        paths = [path for path, *_ in group]
        t = time.perf_counter()
        reports = ingest_vectors(engine, paths, settings, layer=layer, kind=kind, source_layer=source_layer)
        dt = time.perf_counter() - t
        if layer == "buildings":
            building_s += dt
        else:
            other_s += dt
        stored[source_layer] = stored.get(source_layer, 0) + sum(r.stored for r in reports)
    total = time.perf_counter() - started
    engine.dispose()
    return {
        "seconds": round(total, 2),
        "buildings_seconds": round(building_s, 2),
        "context_seconds": round(other_s, 2),
        "stored": stored,
    }


def stage_health(args: argparse.Namespace) -> dict[str, Any]:
    """The health check over the whole province (one backend, or coverage fanned out over ``--hc-workers``)."""
    from concurrent.futures import ThreadPoolExecutor

    from cim.analysis.health_check import run_health_check
    from cim.db.engine import make_engine

    engine = make_engine(args.db)
    t = time.perf_counter()
    if args.hc_workers > 0:
        with ThreadPoolExecutor(max_workers=args.hc_workers) as pool:
            report = run_health_check(engine, executor=pool, partitions=args.hc_workers)
    else:
        report = run_health_check(engine)
    seconds = time.perf_counter() - t
    engine.dispose()
    return {
        "seconds": round(seconds, 2),
        "timings_s": report.timings_s,
        "districts": len(report.districts),
        "values": len(report.values),
        "parcels": len(report.parcels),
        "park_service_coverage": report.value("park_service_coverage"),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _percentiles(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"p50_ms": round(statistics.median(ms), 2), "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2)}


def stage_serve(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """``cim serve`` on a loopback port; bbox queries around the cities and GETs of random tile files."""
    import httpx

    from sample_models.province import HUBEI_CITIES

    port = _free_port()
    proc = subprocess.Popen(
        [str(CIM), "-q", "serve", "--port", str(port), "--log-level", "warning"],
        env={**env, "CIM_API_ACCESS_LOG": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sampler = TreeSampler(proc.pid)
    rng = random.Random(args.seed)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/conformance")
        bbox_ms: list[float] = []
        features = 0
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(args.queries):
                lon, lat, _ = rng.choice(HUBEI_CITIES)
                lon, lat = lon + rng.uniform(-0.05, 0.05), lat + rng.uniform(-0.05, 0.05)
                bbox = f"{lon - 0.005:.6f},{lat - 0.005:.6f},{lon + 0.005:.6f},{lat + 0.005:.6f}"
                t = time.perf_counter()
                r = client.get("/collections/buildings/items", params={"bbox": bbox, "limit": "1000"})
                r.raise_for_status()
                bbox_ms.append((time.perf_counter() - t) * 1000)
                features += int(r.json()["numberReturned"])
            root = args.workdir / "data" / "tiles" / TILESET
            tiles = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".glb", ".json"))
            picks = [rng.choice(tiles) for _ in range(args.queries)]
            tile_ms: list[float] = []
            tile_bytes = 0
            t0 = time.perf_counter()
            for rel in picks:
                t = time.perf_counter()
                r = client.get(f"/tiles/{TILESET}/{rel}")
                r.raise_for_status()
                tile_bytes += len(r.content)
                tile_ms.append((time.perf_counter() - t) * 1000)
            tile_s = time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        sampler.stop()
    return {
        "bbox_queries": args.queries,
        "bbox_features": features,
        "bbox": _percentiles(bbox_ms),
        "tile_gets": len(picks),
        "tile_bytes": tile_bytes,
        "tile_gets_per_s": round(len(picks) / tile_s, 1),
        "tile": _percentiles(tile_ms),
        "peak_rss_gib": round(sampler.peak_bytes / GIB, 3),
    }


# --------------------------------------------------------------------------------------------- driver
def _server_url() -> str:
    from cim.db.cluster import PrivateCluster
    from cim.db.engine import connect_url

    external = os.environ.get("DATABASE_URL")
    if external:
        return connect_url(external.split("?")[0]).rpartition("/")[0] + "/postgres"
    data_dir = Path(os.environ.get("CIM_DATA_DIR", ROOT / ".cim"))
    return PrivateCluster(data_dir).up().rpartition("/")[0] + "/postgres"


def _db_bytes(db_url: str) -> int:
    import psycopg

    with psycopg.connect(db_url) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _live_buildings(db_url: str) -> int:
    import psycopg

    with psycopg.connect(db_url) as conn:
        return int(conn.execute("SELECT count(*) FROM building WHERE valid_to IS NULL").fetchone()[0])  # type: ignore[index]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every stage in order; returns the figures (also the ``--json`` document)."""
    from cim.db.scratch import create_database, drop_database

    server = _server_url()
    name = f"cim_bench_province_{secrets.token_hex(3)}"
    db_url = create_database(server, name)
    env = {**os.environ, "DATABASE_URL": db_url, "CIM_DATA_DIR": str(args.workdir / "data")}
    n = args.buildings
    result: dict[str, Any] = {
        "buildings": n,
        "cores": os.cpu_count(),
        "tile_jobs": args.jobs,
        "hc_workers": args.hc_workers,
        "load_avg_1m_start": round(os.getloadavg()[0], 2),
        "stages": {},
    }
    stages = result["stages"]
    try:
        stages["generate"] = run_stage("generate", _child_cmd("generate", args, db_url), env)
        stages["ingest"] = run_stage("ingest", _child_cmd("ingest", args, db_url), env)
        live = _live_buildings(db_url)
        result["live_buildings"] = live
        stages["ingest"]["rate"] = round(live / stages["ingest"]["buildings_seconds"])
        result["database_bytes_after_ingest"] = _db_bytes(db_url)
        tiles_cmd = [
            str(CIM),
            "tiles",
            "build",
            TILESET,
            "--layers",
            "buildings",
            "--compress",
            "meshopt",
            "--jobs",
            str(args.jobs),
            "--json",
        ]
        stages["tiles"] = run_stage("tiles", tiles_cmd, env)
        # The builder's own time (as benchmarks/tiles_build.py times it); the process wall time is kept beside it.
        stages["tiles"]["seconds"] = float(stages["tiles"].get("seconds") or stages["tiles"]["process_wall_s"])
        stages["tiles"]["rate"] = round(live / stages["tiles"]["seconds"])
        tileset_bytes = _dir_bytes(args.workdir / "data" / "tiles" / TILESET)
        result["tileset_bytes"] = tileset_bytes
        result["tileset_bytes_per_building"] = round(tileset_bytes / live, 1)
        stages["health"] = run_stage("health", _child_cmd("health", args, db_url), env)
        stages["health"]["rate"] = round(live / stages["health"]["seconds"])
        stages["serve"] = {**stage_serve(args, env)}
        result["database_bytes"] = _db_bytes(db_url)
    finally:
        if not args.keep:
            try:
                drop_database(server, name, timeout_s=300)
            except Exception as exc:  # the figures are worth more than the clean-up
                print(f"could not drop the benchmark database {name}: {exc}", file=sys.stderr)
        else:
            result["database_url"] = db_url
    for key in ("ingest", "tiles", "health"):
        st = stages[key]
        st["cost_us_per_building"] = round(1e6 * st["seconds"] / live, 3)
        st["cpu_us_per_building"] = round(1e6 * st["cpu_s"] / live, 3)
    result["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    result["targets"] = targets(result, args.baseline)
    return result


def targets(result: dict[str, Any], baseline_path: Path | None) -> dict[str, dict[str, Any]]:
    """Each figure against its target: value, target, met."""
    st = result["stages"]
    out: dict[str, dict[str, Any]] = {
        "tiles_buildings_per_s": {"value": st["tiles"]["rate"], "target": ">= 100000"},
        "meshopt_bytes_per_building": {"value": result["tileset_bytes_per_building"], "target": "<= 150"},
        "ingest_buildings_per_s": {"value": st["ingest"]["rate"], "target": ">= 150000"},
        "health_check_s": {
            "value": st["health"]["seconds"],
            "target": f"<= {health_target_s(result['buildings']):.0f}",
        },
    }
    out["tiles_buildings_per_s"]["met"] = st["tiles"]["rate"] >= TARGETS["tiles_buildings_per_s"]
    out["meshopt_bytes_per_building"]["met"] = (
        result["tileset_bytes_per_building"] <= TARGETS["meshopt_bytes_per_building"]
    )
    out["ingest_buildings_per_s"]["met"] = st["ingest"]["rate"] >= TARGETS["ingest_buildings_per_s"]
    out["health_check_s"]["met"] = st["health"]["seconds"] <= health_target_s(result["buildings"])
    for key in ("ingest", "tiles", "health"):
        rss = st[key]["peak_rss_gib"]
        out[f"{key}_peak_rss_gib"] = {"value": rss, "target": "< 4", "met": rss < TARGETS["stage_peak_rss_gib"]}
    if baseline_path is not None:
        base = json.loads(baseline_path.read_text())
        for key in ("ingest", "tiles", "health"):
            ratio = st[key]["cost_us_per_building"] / base["stages"][key]["cost_us_per_building"]
            out[f"{key}_cost_vs_{base['buildings']}"] = {
                "value": round(ratio, 3),
                "target": "<= 1.2",
                "met": ratio <= TARGETS["cost_ratio_vs_baseline"],
            }
    return out


def report(result: dict[str, Any]) -> None:
    """The figures as text, each against its target."""
    n, st = result["live_buildings"], result["stages"]
    print(
        f"province benchmark: {n:,} buildings, {result['cores']} cores, load average "
        f"{result['load_avg_1m_start']} → {result['load_avg_1m_end']} (1 min)"
    )
    print(f"  {'stage':<9}{'wall s':>9}{'buildings/s':>13}{'CPU s':>9}{'peak RSS GiB':>14}{'µs/building':>13}")
    for key in ("generate", "ingest", "tiles", "health"):
        s = st[key]
        rate = f"{s['rate']:,}" if "rate" in s else "-"
        cost = f"{s['cost_us_per_building']:.2f}" if "cost_us_per_building" in s else "-"
        wall = s.get("seconds", s["process_wall_s"])
        print(f"  {key:<9}{wall:>9.1f}{rate:>13}{s['cpu_s']:>9.1f}{s['peak_rss_gib']:>14.2f}{cost:>13}")
    print(f"  health-check stages (s): {st['health']['timings_s']}")
    sv = st["serve"]
    print(
        f"  serve: {sv['bbox_queries']} bbox queries (0.01°, limit 1000, {sv['bbox_features']:,} features) "
        f"p50 {sv['bbox']['p50_ms']} ms p90 {sv['bbox']['p90_ms']} ms; {sv['tile_gets']} tile GETs "
        f"{sv['tile_gets_per_s']}/s p50 {sv['tile']['p50_ms']} ms p90 {sv['tile']['p90_ms']} ms"
    )
    print(
        f"  database {result['database_bytes'] / GIB:.2f} GiB ({result['database_bytes'] / n:,.0f} B/building); "
        f"tileset {result['tileset_bytes'] / GIB:.3f} GiB ({result['tileset_bytes_per_building']} B/building)"
    )
    print("  targets:")
    for key, t in result["targets"].items():
        print(f"    {key:<34}{t['value']!s:>12}  target {t['target']:<9} {'met' if t['met'] else 'NOT MET'}")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments; run a stage (child) or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=10_000_000)
    parser.add_argument("--jobs", type=int, default=2, help="tile builder processes")
    parser.add_argument(
        "--hc-workers", type=int, default=2, help="fan the health check's coverage out over N backends (0: one)"
    )
    parser.add_argument("--queries", type=int, default=200, help="bbox queries and tile GETs")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--workdir", type=Path, default=None, help="where files, tiles go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the work directory")
    parser.add_argument("--baseline", type=Path, default=None, help="--json output of a 1M run to compare cost with")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document at the end")
    parser.add_argument("--stage", choices=["generate", "ingest", "health"], help=argparse.SUPPRESS)
    parser.add_argument("--db", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        fn = {"generate": stage_generate, "ingest": stage_ingest, "health": stage_health}[args.stage]
        print(json.dumps(fn(args), default=str))
        return 0
    temp = args.workdir is None
    if temp:
        args.workdir = Path(tempfile.mkdtemp(prefix="cim_province_"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args)
    finally:
        if temp and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    report(result)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
