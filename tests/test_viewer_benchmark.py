"""The viewer benchmark's verdicts: each target against the right figure (no browser: figures given)."""

from __future__ import annotations

from benchmarks.viewer_load import LEVELS, STREAMING, ViewFigures, verdicts


def _load(platform: str, view: str, settled: float, tilesets: float, streaming: str = STREAMING) -> ViewFigures:
    return ViewFigures(
        platform, view, True, streaming, settled, 11, 2_000_000, 40, 900_000, 80, 3_000_000, tilesets_ms=tilesets
    )


def test_street_buildings_complete_is_judged_on_the_3d_tiles_and_the_settle_on_the_whole_view() -> None:
    figures = [
        _load("sample", "start", 15_000, 8_200),
        _load("sample", "start", 16_100, 9_000, LEVELS),
        *(_load("province", "street", s, t) for s, t in ((15_600, 5_900), (15_900, 6_100), (14_700, 5_800))),
    ]
    by_target = {v["target"]: v for v in verdicts(figures)}
    same = by_target["street buildings complete ms (≤ sample city load, same viewer)"]
    assert (same["value"], same["limit"], same["met"]) == (5_900, 15_000, True)  # median of the 3D tiles' times
    settle = by_target["street settle ms (≤ sample city load, same viewer)"]
    assert (settle["value"], settle["limit"], settle["met"]) == (15_600, 15_000, False)
    former = by_target["street settle ms (≤ sample city load, its former streaming)"]
    assert (former["limit"], former["met"]) == (16_100, True)
    assert len(by_target) == 4


def test_no_street_load_gives_no_street_verdict() -> None:
    assert verdicts([_load("sample", "start", 15_000, 8_200)]) == []
