"""IFC ingest throughput against the bare geometry iterator over the same file.

For each model: the time of a bare ``ifcopenshell.geom.iterator`` pass (same settings and products as the
ingest, meshes read into NumPy and dropped) with 1 and 2 threads, then the full ``ingest_ifc`` (georeference,
properties, WKB, COPY, commit) with the chosen default threads; elements/s, wall time and peak RSS of each
run (every run in a fresh process). Target: ingest ≤ 1.5 × bare iterator on a model of ≥ 20 000 elements.

Uses the platform database (``DATABASE_URL`` or the private cluster) but a dedicated, dropped-afterwards
database. Run: ``python -m benchmarks.ifc_ingest [--large PATH] [MODEL.ifc …]``; the large office model is
generated (≈ 22 000 elements) when PATH does not exist yet.
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
SHARED_IFC = ROOT.parent / "shared" / "data" / "ifc"
DEFAULT_MODELS = [SHARED_IFC / "AC20-FZK-Haus.ifc", SHARED_IFC / "duplex.ifc"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bare_iterator(path: Path, threads: int) -> dict[str, Any]:
    """One bare iterator pass over the model's body products; returns timing figures."""
    import ifcopenshell.geom

    from ingest.ifc_geometry import body_products, geometry_settings
    from ingest.ifc_model import open_model

    started = time.perf_counter()
    model, _ = open_model(path)
    products = body_products(model)
    opened = time.perf_counter()
    iterator = ifcopenshell.geom.iterator(geometry_settings(), model, threads, include=products)
    count = triangles = 0
    if iterator.initialize():
        while True:
            geometry = iterator.get().geometry
            faces = np.frombuffer(geometry.faces_buffer, dtype=np.int32)
            np.frombuffer(geometry.verts_buffer, dtype=np.float64)
            triangles += len(faces) // 3
            count += 1
            if not iterator.next():
                break
    done = time.perf_counter()
    return {
        "elements": count,
        "triangles": triangles,
        "open_s": round(opened - started, 3),
        "iterator_s": round(done - opened, 3),
        "wall_s": round(done - started, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def ingest(path: Path, threads: int, url: str) -> dict[str, Any]:
    """One full ingest into the benchmark database; returns timing figures."""
    from cim.db.engine import make_engine
    from cim.settings import Settings
    from ingest.ifc import ingest_ifc

    engine = make_engine(url)
    settings = Settings(database_url=url)
    started = time.perf_counter()
    origin = None if _georeferenced(path) else (114.30, 30.58, 20.0)
    report = ingest_ifc(engine, path, settings, threads=threads, origin=origin)
    wall = time.perf_counter() - started
    engine.dispose()
    return {
        "elements": report.elements,
        "triangles": report.triangles,
        "wall_s": round(wall, 3),
        "elements_per_s": round(report.elements / wall, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "dataset_id": report.dataset_id,
    }


def _georeferenced(path: Path) -> bool:
    from ingest.ifc_georef import georeference_of
    from ingest.ifc_model import open_model

    try:
        georeference_of(open_model(path)[0])
    except Exception:
        return False
    return True


def _in_subprocess(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.ifc_ingest", "--one", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "benchmark run failed")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ingest_and_forget(path: Path, threads: int, url: str) -> dict[str, Any]:
    """Time one ingest in a fresh process, then delete what it stored so the next run is not a no-op."""
    result = _in_subprocess("ingest", str(path), str(threads), url)
    with psycopg.connect(url) as conn:
        for table in ("element", "building"):
            conn.execute(f"DELETE FROM {table} WHERE dataset_id = %s", (result["dataset_id"],))
        conn.execute("DELETE FROM dataset WHERE id = %s", (result["dataset_id"],))
    return result


def _benchmark_database() -> tuple[str, str, str]:
    from cim.db import database_url
    from cim.db.scratch import create_database
    from cim.settings import load_settings

    server = database_url(load_settings(), migrate=False)
    name = f"cim_bench_ifc_{secrets.token_hex(4)}"
    return server, name, create_database(server, name)


def main(argv: list[str] | None = None) -> None:
    """Print, per model, bare iterator (1 and 2 threads) and full ingest figures side by side."""
    parser = argparse.ArgumentParser(description="IFC ingest vs bare geometry iterator")
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--large", type=Path, default=Path("/tmp/cim-bench/office-large.ifc"))
    parser.add_argument("--no-large", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="ingest threads (default: the ingest default)")
    parser.add_argument("--both-threads", action="store_true", help="also time the ingest with the other thread count")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved repetitions; the best is shown")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        mode, path, threads = args.one[0], Path(args.one[1]), int(args.one[2])
        result = bare_iterator(path, threads) if mode == "bare" else ingest(path, threads, args.one[3])
        print(json.dumps(result))
        return

    from ingest.ifc_geometry import default_threads

    models = list(args.models) or list(DEFAULT_MODELS)
    if not args.no_large:
        if not args.large.exists():
            from sample_models.ifc_office import generate_large_office

            print(f"generating {args.large} (≈ 22 000 elements, a few minutes)…", file=sys.stderr)
            generate_large_office(args.large)
        models.append(args.large)
    threads = args.threads or default_threads()
    base, name, url = _benchmark_database()
    try:
        header = (
            f"{'model':32} {'elements':>8} {'bare 1t s':>9} {'bare 2t s':>9} {'ingest s':>9} {'ratio':>6} "
            f"{'elem/s':>8} {'RSS bare':>9} {'RSS ingest':>10} {'ingest alt-t s':>14}"
        )
        print(f"ingest threads: {threads}")
        print(header)
        for path in models:
            runs: dict[str, list[dict[str, Any]]] = {"bare1": [], "bare2": [], "ingest": [], "other": []}
            other_threads = 2 if threads == 1 else 1
            for _ in range(args.repeat):  # interleaved, best of N: the machine is shared
                runs["bare1"].append(_in_subprocess("bare", str(path), "1"))
                runs["bare2"].append(_in_subprocess("bare", str(path), "2"))
                runs["ingest"].append(_ingest_and_forget(path, threads, url))
                if args.both_threads:
                    runs["other"].append(_ingest_and_forget(path, other_threads, url))
            best = {key: min(values, key=lambda r: r["wall_s"]) for key, values in runs.items() if values}
            bare1, bare2, full = best["bare1"], best["bare2"], best["ingest"]
            other = best.get("other")
            bare = bare1 if threads == 1 else bare2
            ratio = full["wall_s"] / bare["wall_s"] if bare["wall_s"] else float("nan")
            print(
                f"{path.name[:32]:32} {full['elements']:>8} {bare1['wall_s']:>9.2f} {bare2['wall_s']:>9.2f} "
                f"{full['wall_s']:>9.2f} {ratio:>6.2f} {full['elements_per_s']:>8.0f} "
                f"{bare['peak_rss_mb']:>8.0f}M {full['peak_rss_mb']:>9.0f}M "
                f"{(f'{other_threads}t: ' + format(other['wall_s'], '.2f')) if other else '-':>14}",
                flush=True,
            )
    finally:
        from cim.db.scratch import drop_database

        drop_database(base, name)


if __name__ == "__main__":
    main()
