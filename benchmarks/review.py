"""Time of a full BIM pre-review of a 2–5 MB model on the sample city (target < 20 s), and of the IDS check.

The model is the sample office (``sample_models.ifc_office``) grown until its file is 2–5 MB, at its site in
the sample Wuhan district: every check runs, sunlight against the district's residential buildings. Uses
the platform's PostGIS server (``DATABASE_URL`` or the private cluster) with a dedicated database that is
dropped afterwards. Run: ``python -m benchmarks.review [--storeys N] [--bays N] [--buildings N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from pathlib import Path

from cim.db.cluster import PrivateCluster
from cim.db.engine import connect_url, make_engine
from cim.db.scratch import create_database, database_on, drop_database
from cim.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Generate the city and the model, review it, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storeys", type=int, default=16)
    parser.add_argument("--bays", type=int, default=9)
    parser.add_argument("--buildings", type=int, default=2000, help="buildings of the sample district")
    args = parser.parse_args(argv)

    from cim.review.checks.ids import check_ids
    from cim.review.files import sha256_of
    from cim.review.model import load_model
    from cim.review.registry import ReviewContext
    from cim.review.run import review_file
    from cim.review.settings import ReviewSettings
    from sample_models.district import generate_district
    from sample_models.ifc_office import OfficeLayout, generate_office
    from sample_models.load import load_district

    external = os.environ.get("DATABASE_URL")
    server = database_on(connect_url(external) if external else PrivateCluster(ROOT / ".cim").up(), "postgres")
    name = f"cim_bench_review_{secrets.token_hex(4)}"
    url = create_database(server, name)
    try:
        with tempfile.TemporaryDirectory(prefix="cim-bench-review-") as folder:
            work = Path(folder)
            settings = Settings(data_dir=work / "data", database_url=url)
            engine = make_engine(url)
            t0 = time.perf_counter()
            load_district(engine, settings, generate_district(work / "district", buildings=args.buildings))
            city_s = time.perf_counter() - t0
            model = generate_office(work / "office.ifc", OfficeLayout(storeys=args.storeys, bays=args.bays))
            size_mb = model.stat().st_size / 2**20
            started = time.perf_counter()
            report = review_file(model, settings, engine=engine, parcel="JH-OFFICE-01")
            full_s = time.perf_counter() - started
            loaded = load_model(model, sha256=sha256_of(model), size_bytes=model.stat().st_size)
            context = ReviewContext(model=loaded, settings=settings, review_settings=ReviewSettings())
            started = time.perf_counter()
            findings = check_ids(context)
            ids_s = time.perf_counter() - started
            figures = {
                "model_mb": round(size_mb, 2),
                "elements": report.model.get("elements"),
                "city_buildings": args.buildings,
                "city_load_s": round(city_s, 1),
                "full_review_s": round(full_s, 2),
                "target_s": 20.0,
                "per_check_s": {n: round(c.seconds, 2) for n, c in report.checks.items()},
                "ids_check_alone_s": round(ids_s, 2),
                "ids_specifications": len(findings),
                "verdict": report.verdict,
                "sunlight_buildings": next(
                    (f.value for f in report.checks["sunlight"].findings if f.rule == "sunlight.standard"), None
                ),
            }
            engine.dispose()
    finally:
        drop_database(server, name)
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
