"""Benchmark: synthetic LOD1 buildings in PostGIS → 3D Tiles, end to end (read, extrude, metadata, write).

Usage: ``python -m benchmarks.tiles_build [--counts 100000,1000000] [--jobs 2] [--compress none,meshopt,draco]
[--py3dtiles PATH] [--breakdown] [--json]``

Creates (or reuses) a dedicated database ``cim_bench_tiles`` on the platform's PostGIS server, fills it with
generated buildings through COPY (vectorised EWKB), then runs :func:`tiles.build.build_tileset` without
compression, with meshopt and with draco (``--compress``) and prints buildings/s, tiles written, bytes per
building and peak RSS (``--breakdown``: also the bytes per building of each vertex attribute, the indices,
each metadata property, the JSON chunks and the headers, compressed sizes). When a ``py3dtiles`` executable
is given, times ``py3dtiles export`` on the same table (extruded to polyhedral surfaces, as it needs) as a
reference.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg

from cim.db import database_url
from cim.db.cluster import ensure_extensions
from cim.db.engine import connect_url, make_engine
from cim.db.migrate import upgrade_to_head
from cim.settings import Settings, load_settings
from tiles.build import build_tileset
from tiles.options import OutputOptions, TilingOptions

DB = "cim_bench_tiles"
USES = np.array(["residential", "commercial", "office", "industrial", "public", "education", "medical", "mixed"])


def _server_db(url: str, name: str) -> str:
    base, _, _ = connect_url(url).rpartition("/")
    return f"{base}/{name}"


def ensure_database(settings: Settings) -> str:
    """A migrated benchmark database on the platform's server; returns its libpq URL."""
    url = database_url(settings)
    admin = _server_db(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DB}"')
    bench = _server_db(url, DB)
    with psycopg.connect(bench, autocommit=True) as conn:
        ensure_extensions(conn)
    upgrade_to_head(bench)
    return bench


def footprints_ewkb(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n rotated rectangles (EWKB MultiPolygon, SRID 4490) spread like a city region; also heights and bases."""
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    # ~60 m spacing: 1M buildings cover ≈ 60 × 60 km around Wuhan.
    step = 0.0006
    cx = 114.0 + (i % side) * step + rng.uniform(-0.0001, 0.0001, n)
    cy = 30.3 + (i // side) * step * 0.87 + rng.uniform(-0.0001, 0.0001, n)
    w = rng.uniform(8, 30, n) / 96_000.0
    d = rng.uniform(8, 25, n) / 111_000.0
    a = rng.uniform(0, np.pi / 2, n)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=np.float64)
    ca, sa = np.cos(a)[:, None], np.sin(a)[:, None]
    ux = corners[None, :, 0] * w[:, None] / 2
    uy = corners[None, :, 1] * d[:, None] / 2
    xs = cx[:, None] + ux * ca - uy * sa * (96_000 / 111_000)
    ys = cy[:, None] + ux * sa * (111_000 / 96_000) + uy * ca
    rec = np.dtype(
        [("bo", "u1"), ("t", "<u4"), ("srid", "<u4"), ("np", "<u4"), ("bo2", "u1"), ("t2", "<u4"), ("nr", "<u4"),
         ("npt", "<u4"), ("xy", "<f8", (10,))]
    )  # fmt: skip
    arr = np.zeros(n, dtype=rec)
    arr["bo"], arr["t"], arr["srid"], arr["np"] = 1, 0x20000006, 4490, 1
    arr["bo2"], arr["t2"], arr["nr"], arr["npt"] = 1, 3, 1, 5
    arr["xy"] = np.stack([xs, ys], axis=2).reshape(n, 10)
    height = rng.gamma(2.0, 9.0, n) + 3.0
    base = 20.0 + 5.0 * np.sin(cx * 50) + 3.0 * np.cos(cy * 40)
    return arr, height, base


def fill(url: str, n: int, seed: int = 1) -> float:
    """Replace the benchmark buildings with n generated ones via COPY; returns seconds."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM element")
        conn.execute("DELETE FROM building")
        conn.execute("DELETE FROM tileset")
        conn.execute("DELETE FROM dataset")
        ds = conn.execute(
            "INSERT INTO dataset (name, kind, layer, path, sha256) VALUES ('bench', 'vector', 'buildings', "
            "'/bench', repeat('0', 64)) RETURNING id"
        ).fetchone()
        assert ds is not None
        dataset_id = int(ds[0])
        chunk = 200_000
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY building (footprint, base_height, height, storeys, use, year_built, name, cim_level, "
                "safety_class, dataset_id) FROM STDIN"
            ) as copy,
        ):
            for start in range(0, n, chunk):
                m = min(chunk, n - start)
                wkb, height, base = footprints_ewkb(m, rng)
                raw = wkb.tobytes()
                size = wkb.dtype.itemsize
                hexes = raw.hex()
                storeys = np.maximum(1, (height / 3).astype(int))
                use = USES[rng.integers(0, len(USES), m)]
                year = rng.integers(1960, 2024, m)
                safety = np.array(["A", "B", "C", "D", "\\N"])[rng.integers(0, 5, m)]
                buf = io.StringIO()
                for j in range(m):
                    buf.write(
                        f"{hexes[2 * size * j : 2 * size * (j + 1)]}\t{base[j]:.2f}\t{height[j]:.2f}\t"
                        f"{storeys[j]}\t{use[j]}\t{year[j]}\tBuilding {start + j}\t2\t{safety[j]}\t{dataset_id}\n"
                    )
                copy.write(buf.getvalue())
        conn.execute("ANALYZE building")
        conn.commit()
    return time.perf_counter() - t0


class PeakRss:
    """Sample the memory (PSS) of this process plus its children (the worker pool) every 100 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process(os.getpid())
        while not self._stop.is_set():
            try:
                # PSS: pages shared by the forked workers are counted once, not once per process.
                procs = [me, *me.children(recursive=True)]
                total = sum(p.memory_full_info().pss for p in procs)
            except psutil.Error:
                total = 0
            self.peak = max(self.peak, total)
            self._stop.wait(0.1)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_build(
    url: str, settings: Settings, n: int, jobs: int, compress: str, out: Path, *, parts: bool = False
) -> dict[str, float]:
    """One timed build; returns its figures (with ``parts``: also bytes/building of each part, ``breakdown``)."""
    engine = make_engine(url)
    shutil.rmtree(out, ignore_errors=True)
    with PeakRss() as rss:
        t0 = time.perf_counter()
        tiling = TilingOptions(layers=("buildings",))
        output = OutputOptions(out=out, compress=compress, jobs=jobs)
        report = build_tileset(engine, settings, f"bench_{compress}", tiling, output)
        seconds = time.perf_counter() - t0
    engine.dispose()
    glb = sum(p.stat().st_size for p in out.rglob("*.glb"))
    leaf_glb = glb  # parents carry at most PARENT_CAPACITY simplified blocks each; reported separately below
    figures = {
        "buildings": report.buildings,
        "seconds": seconds,
        "buildings_per_s": n / seconds,
        "tiles": report.tiles,
        "written": report.written,
        "bytes_total": float(report.bytes),
        "glb_bytes_per_building": leaf_glb / n,
        "peak_rss_gib": rss.peak / 2**30,
        "read_s": report.timings.get("read", 0.0),
        "maxrss_self_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    if parts:
        figures |= {f"bytes/building {k}": v / n for k, v in breakdown(out).items()}
    return figures


def _view_bytes(view: dict[str, Any]) -> int:
    """Bytes a bufferView takes in the file: its meshopt-compressed length when it has one."""
    ext = view.get("extensions")
    if isinstance(ext, dict) and "EXT_meshopt_compression" in ext:
        return int(ext["EXT_meshopt_compression"]["byteLength"])
    return int(view["byteLength"])


def breakdown(out: Path) -> dict[str, int]:
    """Bytes of every .glb under ``out`` by part: each vertex attribute and the indices of the meshes, each
    property's values (and string offsets) of the property tables, the JSON chunk, and the rest (GLB and chunk
    headers, padding between views)."""
    from tiles.glb import read_glb

    parts: dict[str, int] = {}

    def add(key: str, n: int) -> None:
        parts[key] = parts.get(key, 0) + n

    for path in out.rglob("*.glb"):
        data = path.read_bytes()
        doc, _blob = read_glb(data)
        views, accessors = doc.get("bufferViews", []), doc.get("accessors", [])
        named: dict[int, str] = {}
        for mesh in doc.get("meshes", []):
            for prim in mesh["primitives"]:
                for name, acc in prim["attributes"].items():
                    if "bufferView" in accessors[acc]:
                        named[accessors[acc]["bufferView"]] = name
                if "bufferView" in accessors[prim["indices"]]:
                    named[accessors[prim["indices"]]["bufferView"]] = "indices"
        meta = doc.get("extensions", {}).get("EXT_structural_metadata", {})
        for table in meta.get("propertyTables", []):
            for name, prop in table["properties"].items():
                named[prop["values"]] = f"{table['class']}.{name}"
                for extra in ("stringOffsets", "arrayOffsets"):
                    if extra in prop:
                        named[prop[extra]] = f"{table['class']}.{name} ({extra})"
        counted = 0
        for i, view in enumerate(views):
            n = _view_bytes(view)
            add(named.get(i, "other views"), n)
            counted += n
        jlen = int.from_bytes(data[12:16], "little")
        add("JSON chunk", jlen)
        add("headers and padding", len(data) - jlen - counted)
    return parts


def run_py3dtiles(exe: str, url: str, out: Path) -> tuple[float, float] | str:
    """Time ``py3dtiles export`` on the same buildings; returns (preparation s, export s) or why it failed.

    py3dtiles reads 3D polygons (MultiPolygon Z / PolyhedralSurface Z WKB) in a metric frame, so the
    preparation extrudes the footprints in EPSG:4547 and transforms them to EPSG:4479 (ECEF) into a table.
    """
    info = psycopg.conninfo.conninfo_to_dict(connect_url(url))
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("DROP TABLE IF EXISTS bench_lod1")
        conn.execute(
            "CREATE TABLE bench_lod1 AS SELECT id, ST_Transform(ST_Extrude(ST_Force3D(ST_Transform("
            "ST_GeometryN(footprint, 1), 4547), base_height), 0, 0, height), 4479) AS geom "
            "FROM building WHERE valid_to IS NULL"
        )
        prep = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    conninfo = " ".join(f"{k}={info[k]}" for k in ("dbname", "host", "port", "user", "password") if info.get(k))
    cmd = [exe, "export", "-D", conninfo, "-t", "bench_lod1", "-c", "geom", "-i", "id", "-s", str(out)]
    cmd += ["--spec-version", "1.1"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return f"failed ({lines[-1] if lines else proc.returncode})"
    return prep, seconds


TARGETS = {"buildings_per_s": 50_000.0, "peak_rss_gib": 3.0}
"""README targets: ≥ 50,000 buildings/s, < 3 GiB; bytes/building ≤ BYTES_TARGET by compression (meshopt: issue 18)."""
BYTES_TARGET = {"none": 900.0, "meshopt": 150.0}


def verdicts(r: dict[str, float], compress: str) -> dict[str, bool]:
    """Each target of a run: met or not."""
    out = {
        "buildings_per_s": r["buildings_per_s"] >= TARGETS["buildings_per_s"],
        "peak_rss_gib": r["peak_rss_gib"] < TARGETS["peak_rss_gib"],
    }
    if compress in BYTES_TARGET:
        out["glb_bytes_per_building"] = r["glb_bytes_per_building"] <= BYTES_TARGET[compress]
    return out


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="100000,1000000")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--compress", default="none,meshopt,draco", help="compressions to run, comma-separated")
    parser.add_argument("--py3dtiles", default=None, help="path of a py3dtiles executable (reference timing)")
    parser.add_argument("--py3dtiles-max", type=int, default=100_000, help="largest count to time py3dtiles on")
    parser.add_argument(
        "--breakdown", action="store_true", help="print bytes/building of each attribute, property and header"
    )
    parser.add_argument("--json", action="store_true", help="also print every figure as one JSON document")
    args = parser.parse_args()
    runs: list[dict[str, object]] = []
    settings = load_settings()
    url = ensure_database(settings)
    work = Path(tempfile.mkdtemp(prefix="cim-bench-tiles-"))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; output in {work}")
    try:
        for n in (int(v) for v in args.counts.split(",")):
            fill_s = fill(url, n)
            print(f"\n{n:,} buildings (COPY insert {fill_s:.1f} s)")
            for compress in args.compress.split(","):
                r = run_build(url, settings, n, args.jobs, compress, work / f"{n}_{compress}", parts=args.breakdown)
                print(
                    f"  compress={compress:7s} jobs={args.jobs}: {r['seconds']:.2f} s = {r['buildings_per_s']:,.0f} "
                    f"buildings/s (DB read {r['read_s']:.2f} s), tiles written {int(r['written'])} "
                    f"({int(r['tiles'])} tiles), {r['glb_bytes_per_building']:.0f} bytes/building (all .glb incl. "
                    f"parent LODs), peak RSS {r['peak_rss_gib']:.2f} GiB (PSS, process + workers)"
                )
                for key in sorted((k for k in r if k.startswith("bytes/building ")), key=lambda k: -r[k]):
                    print(f"    {key[15:]:40s} {r[key]:7.2f} B/building")
                met = verdicts(r, compress)
                bytes_target = f", ≤ {BYTES_TARGET[compress]:.0f} B/building" if compress in BYTES_TARGET else ""
                print(
                    f"    targets ≥ {TARGETS['buildings_per_s']:,.0f} buildings/s, < {TARGETS['peak_rss_gib']:.0f} GiB"
                    f"{bytes_target}: {'met' if all(met.values()) else 'MISSED ' + str(met)}"
                )
                runs.append({"buildings": n, "compress": compress, "jobs": args.jobs, **r, "targets_met": met})
            if args.py3dtiles and n <= args.py3dtiles_max:
                ours = run_build(url, settings, n, args.jobs, "none", work / f"{n}_none")["seconds"]
                ref = run_py3dtiles(args.py3dtiles, url, work / f"{n}_py3dtiles")
                if isinstance(ref, tuple):
                    prep, secs = ref
                    print(
                        f"  py3dtiles export (no metadata): {secs:.2f} s = {n / secs:,.0f} buildings/s "
                        f"(+ {prep:.1f} s to extrude its input in PostGIS); cim tiles {ours:.2f} s: "
                        f"py3dtiles takes {secs / ours:.1f}× as long"
                    )
                else:
                    print(f"  py3dtiles export: {ref}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        print(f"load average at end {os.getloadavg()[0]:.2f}")
    if args.json:
        print(json.dumps({"runs": runs, "targets": TARGETS, "bytes_targets": BYTES_TARGET, "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
