"""A CI-sized run of ``benchmarks/province.py`` (20,000 buildings): every stage runs and its figures hang together.

No timing target is asserted here (targets live in the benchmark's own output); the test checks that the
stages ran on real data, that the tileset passes the official validator, and that the figures are
consistent with each other and with a baseline comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.province import health_target_s, targets
from cim.analysis.indicators import INDICATORS
from tests.conftest import ROOT
from tests.tiles import official

BUILDINGS = 20_000


def test_province_benchmark_at_ci_size(pg_server_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": pg_server_url}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.province",
            "--buildings",
            str(BUILDINGS),
            "--queries",
            "20",
            "--hc-workers",
            "2",
            "--workdir",
            str(tmp_path),
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    result = json.loads(text[text.index("\n{") :])
    st = result["stages"]
    assert "province benchmark: 20,000 buildings" in text and "targets:" in text

    # Ingest: every building and the context layers stored.
    assert result["live_buildings"] == BUILDINGS
    stored = st["ingest"]["stored"]
    assert stored["buildings"] == BUILDINGS
    assert stored["districts"] >= 10 and stored["parcels"] > 50 and stored["road"] > 100
    for kind in ("park", "community_service", "school", "kindergarten", "fire_station", "shelter", "greenway"):
        assert stored[kind] >= 1, kind
    assert 0 < st["ingest"]["buildings_seconds"] <= st["ingest"]["seconds"]
    assert st["ingest"]["rate"] == round(BUILDINGS / st["ingest"]["buildings_seconds"])

    # Tiles: a valid tileset (official validator, 0 errors) whose size is what the figures say.
    tileset = tmp_path / "data" / "tiles" / "province" / "tileset.json"
    found = official.findings(official.run_validator(tileset, tmp_path / "validator.json"), tileset)
    assert found.errors == []
    size = sum(p.stat().st_size for p in tileset.parent.rglob("*") if p.is_file())
    assert result["tileset_bytes"] == size
    assert 20 < result["tileset_bytes_per_building"] < 2000

    # Health check: one value per indicator for each district and the province; coverage fanned out.
    hc = st["health"]
    assert hc["districts"] == stored["districts"]
    assert hc["values"] == (hc["districts"] + 1) * len(INDICATORS)
    assert 0 < hc["park_service_coverage"] <= 100
    assert "service_coverage_wait" in hc["timings_s"]
    assert 0 < hc["timings_s"]["total"] <= hc["seconds"] + 0.01

    # Serving: bbox queries and tile GETs went through the HTTP API.
    sv = st["serve"]
    assert sv["bbox_queries"] == 20 and sv["tile_gets"] == 20 and sv["tile_bytes"] > 0
    assert sv["bbox_features"] > 0

    # Figures hang together.
    for key in ("ingest", "tiles", "health"):
        s = st[key]
        assert s["cost_us_per_building"] == round(1e6 * s["seconds"] / BUILDINGS, 3)
        assert 0 < s["peak_rss_gib"] < 4 and s["peak_rss_single_gib"] <= s["peak_rss_gib"]
        assert s["cpu_s"] > 0
    assert result["database_bytes"] > result["database_bytes_after_ingest"] > 0
    assert result["targets"]["health_check_s"]["target"] == f"<= {health_target_s(BUILDINGS):.0f}"
    assert {t["met"] for t in result["targets"].values()} <= {True, False}

    # Against itself as the baseline every cost ratio is 1.
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(result))
    ratios = {k: v for k, v in targets(result, base).items() if "_cost_vs_" in k}
    assert set(ratios) == {f"{s}_cost_vs_{BUILDINGS}" for s in ("ingest", "tiles", "health")}
    assert all(v["value"] == 1.0 and v["met"] for v in ratios.values())


def test_health_target_follows_the_issue() -> None:
    assert health_target_s(20_000) == 60.0
    assert health_target_s(1_000_000) == 60.0
    assert health_target_s(10_000_000) == 600.0
