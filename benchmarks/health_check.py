"""Time the full health-check indicator set on a synthetic city of 1,000,000 buildings; print peak RSS.

The city is generated vectorised (NumPy + Shapely) and loaded with COPY into a dedicated database
(``cim_bench_analysis`` on the platform's server: ``DATABASE_URL`` or the private cluster). A square grid of
blocks around Wuhan (114°E, 30.4°N): 300 m blocks of 10 × 10 buildings (16 m squares on a 30 m pitch),
roads on every block edge (noded at crossings), 100 districts of 3 km × 3 km with populations, parcels
per block with planning limits, and proportionate facilities: a park or green space per 4 blocks,
community service points, clinics, schools and kindergartens on a 600 m lattice, a fire station per
4 km, shelters, waterlogging points and greenways.

Run: ``.venv/bin/python benchmarks/health_check.py [--buildings N] [--fresh] [--workers N | --executor dask://H:P]``
(``--workers`` fans the service-coverage stage out over N more database backends). The city is reused
across runs unless ``--fresh`` is given or the building count differs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import shapely

from cim.db.cluster import PrivateCluster, ensure_extensions
from cim.db.engine import connect_url, make_engine
from cim.db.migrate import upgrade_to_head

ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "cim_bench_analysis"
LON0, LAT0 = 114.0, 30.4
M_PER_DEG_LON = 111_320.0 * np.cos(np.radians(LAT0 + 0.15))
M_PER_DEG_LAT = 110_900.0
PITCH = 30.0  # metres between building centres
SIZE = 16.0  # building side, metres
BLOCK = 10  # buildings per block side
BLOCK_M = PITCH * BLOCK  # 300 m


def server_url() -> str:
    """libpq URL of the maintenance database of the server to use."""
    external = os.environ.get("DATABASE_URL")
    url = connect_url(external) if external else PrivateCluster(ROOT / ".cim").up()
    base, _, _ = url.split("?")[0].rpartition("/")
    return f"{base}/postgres"


def lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local metres east/north of the origin → lon/lat degrees (plate carrée around the city centre)."""
    return LON0 + x / M_PER_DEG_LON, LAT0 + y / M_PER_DEG_LAT


def ewkb(geoms: np.ndarray) -> np.ndarray:
    """Hex EWKB with SRID 4490 of a Shapely geometry array."""
    return np.asarray(shapely.to_wkb(shapely.set_srid(geoms, 4490), hex=True, include_srid=True))


def boxes(cx: np.ndarray, cy: np.ndarray, w: float, h: float) -> np.ndarray:
    x0, y0 = lonlat(cx - w / 2, cy - h / 2)
    x1, y1 = lonlat(cx + w / 2, cy + h / 2)
    return np.asarray(shapely.box(x0, y0, x1, y1))


def multi(polys: np.ndarray) -> np.ndarray:
    return np.asarray(shapely.multipolygons(polys, indices=np.arange(len(polys))))


def copy_frame(conn: psycopg.Connection, table: str, frame: pd.DataFrame) -> None:
    """COPY a DataFrame (columns = table columns) into ``table`` in 200,000-row chunks."""
    cols = ", ".join(frame.columns)
    with conn.cursor() as cur:
        for start in range(0, len(frame), 200_000):
            buf = io.StringIO()
            frame.iloc[start : start + 200_000].to_csv(buf, index=False, header=False, na_rep="\\N", sep="\t")
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                copy.write(buf.getvalue())


def generate(url: str, n_buildings: int, seed: int = 7) -> dict[str, int]:
    """Generate and COPY the synthetic city; return row counts."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_buildings) / BLOCK)) * BLOCK  # buildings per side, whole blocks
    ext = side * PITCH  # city side, metres
    i = np.arange(n_buildings)
    bx = (i % side) * PITCH + PITCH / 2
    by = (i // side) * PITCH + PITCH / 2
    counts: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        ds = conn.execute(  # type: ignore[index]
            "INSERT INTO dataset (name, kind, layer, path, sha256) VALUES ('bench', 'vector', 'buildings', '/bench', "
            "repeat('0', 64)) RETURNING id"
        ).fetchone()[0]
        # Districts: 3 km squares; built-up area 80 % of the land; populations 20k–80k per km² of built-up land.
        dside = 3000.0
        nd = int(np.ceil(ext / dside))
        gx, gy = np.meshgrid(np.arange(nd), np.arange(nd))
        dx, dy = gx.ravel(), gy.ravel()
        dpoly = multi(boxes(dx * dside + dside / 2, dy * dside + dside / 2, dside, dside))
        codes = np.array([f"D{a:02d}{b:02d}" for a, b in zip(dx, dy, strict=True)])
        built = np.full(len(codes), 0.8 * dside * dside / 1e6)
        pop = (built * rng.uniform(5_000, 25_000, len(codes))).astype(np.int64)
        copy_frame(
            conn,
            "district",
            pd.DataFrame(
                {"code": codes, "name": codes, "population": pop, "built_up_area_km2": built, "geom": ewkb(dpoly)}
            ),
        )
        counts["district"] = len(codes)
        # Buildings.
        uses = rng.choice(
            ["residential", "commercial", "office", "mixed", "public", "industrial"],
            size=n_buildings,
            p=[0.55, 0.12, 0.1, 0.08, 0.1, 0.05],
        )
        height = np.round(rng.gamma(2.0, 12.0, n_buildings) + 3, 1)
        storeys = np.maximum(1, (height / 3).astype(np.int64))
        year = rng.integers(1960, 2026, n_buildings)
        safety = rng.choice(["A", "B", "C", "D", ""], size=n_buildings, p=[0.5, 0.3, 0.08, 0.02, 0.1])
        dcode = codes[(by // dside).astype(int) * nd + (bx // dside).astype(int)]
        fp = multi(boxes(bx, by, SIZE, SIZE))
        frame = pd.DataFrame(
            {
                "footprint": ewkb(fp),
                "height": height,
                "storeys": storeys,
                "use": uses,
                "year_built": year,
                "safety_class": pd.Series(safety).replace("", None),
                "district_code": dcode,
                "dataset_id": ds,
            }
        )
        del fp
        copy_frame(conn, "building", frame)
        counts["building"] = n_buildings
        del frame
        # Roads: every block edge, split at every crossing (segments of one block).
        nb = side // BLOCK
        k = np.arange(nb + 1) * BLOCK_M
        seg = np.arange(nb) * BLOCK_M
        hx, hy = np.meshgrid(seg, k)  # horizontal segments from (hx, hy) to (hx + BLOCK_M, hy)
        vx, vy = np.meshgrid(k, seg)
        x0 = np.concatenate([hx.ravel(), vx.ravel()])
        y0 = np.concatenate([hy.ravel(), vy.ravel()])
        x1 = np.concatenate([hx.ravel() + BLOCK_M, vx.ravel()])
        y1 = np.concatenate([hy.ravel(), vy.ravel() + BLOCK_M])
        lo0, la0 = lonlat(x0, y0)
        lo1, la1 = lonlat(x1, y1)
        coords = np.stack([np.stack([lo0, la0], 1), np.stack([lo1, la1], 1)], 1)
        roads = np.asarray(shapely.linestrings(coords))
        line_index = np.concatenate([hy.ravel(), vx.ravel()]) / BLOCK_M
        road_class = np.where(line_index % 4 == 0, "arterial", np.where(line_index % 2 == 0, "secondary", "branch"))
        fac: list[pd.DataFrame] = [
            pd.DataFrame({"kind": "road", "geom": ewkb(roads), "road_class": road_class, "width_m": 20.0})
        ]
        # Parks / green spaces: one per 2 × 2 blocks, 1,500–12,000 m², at block corners' centres.
        px, py = np.meshgrid(np.arange(0, nb, 2) * BLOCK_M + BLOCK_M / 2, np.arange(0, nb, 2) * BLOCK_M + BLOCK_M / 2)
        px, py = px.ravel(), py.ravel()
        pside = np.sqrt(rng.uniform(1_500, 12_000, len(px)))
        parks = np.asarray(
            [
                shapely.box(*lonlat(x - s / 2, y - s / 2), *lonlat(x + s / 2, y + s / 2))
                for x, y, s in zip(px, py, pside, strict=True)
            ]
        )
        fac.append(pd.DataFrame({"kind": rng.choice(["park", "green_space"], len(px)), "geom": ewkb(parks)}))
        # Service points on a 600 m lattice, jittered.
        sx, sy = np.meshgrid(np.arange(0, ext, 600.0) + 150, np.arange(0, ext, 600.0) + 150)
        sx, sy = sx.ravel(), sy.ravel()
        for kind, share in (("community_service", 0.9), ("clinic", 0.3), ("school", 0.6), ("kindergarten", 0.7)):
            keep = rng.random(len(sx)) < share
            jx, jy = sx[keep] + rng.uniform(-100, 100, keep.sum()), sy[keep] + rng.uniform(-100, 100, keep.sum())
            fac.append(pd.DataFrame({"kind": kind, "geom": ewkb(np.asarray(shapely.points(*lonlat(jx, jy))))}))
        # Fire stations every 4 km on road crossings; shelters; waterlogging points; greenways.
        fx, fy = np.meshgrid(np.arange(1, ext / 4000) * 3900, np.arange(1, ext / 4000) * 3900)
        fac.append(
            pd.DataFrame(
                {"kind": "fire_station", "geom": ewkb(np.asarray(shapely.points(*lonlat(fx.ravel(), fy.ravel()))))}
            )
        )
        shx, shy = rng.uniform(0, ext, len(sx) // 4), rng.uniform(0, ext, len(sx) // 4)
        fac.append(
            pd.DataFrame(
                {
                    "kind": "shelter",
                    "geom": ewkb(boxes(shx, shy, 80, 80)),
                    "area_m2": rng.uniform(3_000, 20_000, len(shx)),
                }
            )
        )
        wx, wy = rng.uniform(0, ext, len(sx) // 8), rng.uniform(0, ext, len(sx) // 8)
        fac.append(
            pd.DataFrame({"kind": "waterlogging_point", "geom": ewkb(np.asarray(shapely.points(*lonlat(wx, wy))))})
        )
        green_y = np.arange(1500.0, ext, 3000.0)
        greenways = np.asarray(
            [
                shapely.LineString(
                    list(zip(*lonlat(np.linspace(0, ext, 60), y + 200 * np.sin(np.linspace(0, 9, 60))), strict=True))
                )
                for y in green_y
            ]
        )
        fac.append(pd.DataFrame({"kind": "greenway", "geom": ewkb(greenways)}))
        facilities = pd.concat(fac, ignore_index=True)
        facilities["dataset_id"] = ds
        copy_frame(conn, "facility", facilities)
        counts["facility"] = len(facilities)
        # Parcels: one per block with limits.
        cx, cy = np.meshgrid(np.arange(nb) * BLOCK_M + BLOCK_M / 2, np.arange(nb) * BLOCK_M + BLOCK_M / 2)
        parcels = multi(boxes(cx.ravel(), cy.ravel(), BLOCK_M - 20, BLOCK_M - 20))
        copy_frame(
            conn,
            "parcel",
            pd.DataFrame(
                {
                    "code": [f"P{j}" for j in range(len(parcels))],
                    "geom": ewkb(parcels),
                    "max_density": rng.uniform(0.2, 0.4, len(parcels)),
                    "max_far": rng.uniform(1.5, 4.0, len(parcels)),
                    "dataset_id": ds,
                }
            ),
        )
        counts["parcel"] = len(parcels)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("building", "facility", "district", "parcel"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return counts


@contextlib.contextmanager
def _executor(workers: int, address: str | None) -> Iterator[tuple[Executor | None, int]]:
    """A thread pool of ``workers`` backends, a Dask cluster's executor, or none (single backend)."""
    if address:
        from dask.distributed import Client

        with Client("tcp://" + address.removeprefix("dask://"), timeout=10) as client:
            n = max(1, sum(client.nthreads().values()))
            yield client.get_executor(), max(n, workers)
    elif workers > 0:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield pool, workers
    else:
        yield None, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true", help="Regenerate the synthetic city.")
    parser.add_argument("--fire-method", default="auto", choices=["auto", "pgrouting", "networkx"])
    parser.add_argument("--compare-fire", action="store_true", help="Also time the fire reach with both engines.")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="Fan the service-coverage stage out over this many database backends (0: one backend).",
    )
    parser.add_argument("--executor", default=None, help="dask://HOST:PORT: fan the coverage stage out on Dask.")
    args = parser.parse_args()

    admin = server_url()
    base = admin.rpartition("/")[0]
    url = f"{base}/{DB_NAME}"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is not None
    count = -1
    if exists and not args.fresh:
        with psycopg.connect(url) as conn:
            count = conn.execute("SELECT count(*) FROM building").fetchone()[0]  # type: ignore[index]
    if count != args.buildings:
        if not exists:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
            with psycopg.connect(url, autocommit=True) as conn:
                ensure_extensions(conn)
            upgrade_to_head(url)
        else:  # reuse the database (DROP DATABASE waits for every backend of the server)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "TRUNCATE analysis_result, analysis_run, building, facility, parcel, district, dataset CASCADE"
                )
        t = time.perf_counter()
        counts = generate(url, args.buildings)
        print(f"generated and loaded {counts} in {time.perf_counter() - t:.1f} s (COPY, indexes, VACUUM ANALYZE)")

    from cim.analysis.health_check import run_health_check

    engine = make_engine(url)
    with _executor(args.workers, args.executor) as (pool, parts):
        t = time.perf_counter()
        report = run_health_check(engine, fire_method=args.fire_method, executor=pool, partitions=parts)
        elapsed = time.perf_counter() - t
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"health check: {len(report.values)} indicator values ({len(report.districts)} districts + total), "
        f"{len(report.parcels)} parcels, fire method {report.parameters.get('fire_method_used')}"
    )
    print(f"stage timings (s): {report.timings_s}")
    print(f"TOTAL {elapsed:.1f} s for {args.buildings:,} buildings; peak RSS of this process {rss_mib:.0f} MiB")
    for code in (
        "park_service_coverage",
        "community_service_15min_coverage",
        "fire_5min_coverage",
        "road_network_density",
        "building_density",
    ):
        print(f"  {code}: {report.value(code):.2f}")
    if args.compare_fire:
        from cim.analysis.fire import compute_fire_reach

        for method in ("pgrouting", "networkx"):
            with engine.connect() as sa_conn, sa_conn.begin() as tx:
                reach = compute_fire_reach(sa_conn, method=method)
                tx.rollback()
            print(
                f"fire reach with {method}: {reach.seconds:.2f} s ({reach.edges} edges, {reach.stations} stations, "
                f"{reach.reached_pieces} reached pieces)"
            )
    engine.dispose()


if __name__ == "__main__":
    main()
