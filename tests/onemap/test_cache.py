"""The one map's disk cache: entries per data stamp, atomic writes, a size bound, safe concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from cim.onemap.cache import LOW_WATER, StampedCache, app_cache
from cim.settings import Settings


def test_an_entry_is_read_back_under_its_stamp_only(tmp_path: Path) -> None:
    cache = StampedCache(tmp_path / "c", 1_000_000)
    assert cache.get("s1", "15/1/2") is None
    cache.put("s1", "15/1/2", b"tile")
    assert cache.get("s1", "15/1/2") == b"tile"
    assert cache.get("s2", "15/1/2") is None
    assert cache.get("s1", "15/1/3") is None


def test_writing_under_a_new_stamp_removes_the_entries_of_the_old_one(tmp_path: Path) -> None:
    cache = StampedCache(tmp_path / "c", 1_000_000)
    cache.put("s1", "a", b"old")
    cache.put("s2", "a", b"new")
    assert cache.get("s1", "a") is None
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["s2"]
    # another process of the server (a new cache object) sees the same entries
    assert StampedCache(tmp_path / "c", 1_000_000).get("s2", "a") == b"new"


def test_an_apps_cache_is_made_once_under_its_data_directory_and_kept_on_its_state(tmp_path: Path) -> None:
    state = SimpleNamespace(settings=Settings(data_dir=tmp_path / "data"))
    with ThreadPoolExecutor(8) as pool:  # first calls at once share one cache object (one size count, one lock)
        caches = list(pool.map(lambda _: app_cache(state, "tiles_cache", "tiles", 1000), range(32)))
    assert all(c is caches[0] for c in caches)
    assert state.tiles_cache is caches[0]
    assert (caches[0].root, caches[0].max_bytes) == ((tmp_path / "data" / "cache" / "tiles").resolve(), 1000)
    assert app_cache(state, "other_cache", "other", 1000) is not caches[0]


def test_the_cache_stays_under_its_bound_and_keeps_the_recently_used_entries(tmp_path: Path) -> None:
    cache = StampedCache(tmp_path / "c", 10_000)
    cache.put("s", "kept", b"k" * 1000)
    old = time.time() - 100
    os.utime(cache.path_of("s", "kept"), (old, old))
    for i in range(30):
        cache.put("s", f"tile-{i}", bytes([i]) * 1000)
        if i == 5:
            assert cache.get("s", "kept") is not None  # a hit refreshes its age
    assert cache.size() <= 10_000
    assert cache.size() >= 10_000 * LOW_WATER - 1000
    assert cache.get("s", "tile-29") == bytes([29]) * 1000
    assert cache.get("s", "tile-0") is None
    cache.put("s", "huge", b"x" * 20_000)  # larger than the bound: not kept, nothing else thrown away for it
    assert cache.get("s", "huge") is None
    assert cache.get("s", "tile-29") is not None


def _write_many(root: str, marker: int, rounds: int) -> None:
    cache = StampedCache(Path(root), 50_000_000)
    for _ in range(rounds):
        cache.put("s", "same", bytes([marker]) * 200_000)


def test_concurrent_writers_of_one_key_never_leave_a_mixed_or_partial_entry(tmp_path: Path) -> None:
    root = tmp_path / "c"
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_many, args=(str(root), m, 40)) for m in (1, 2)]
    seen: set[int] = set()
    threads = [threading.Thread(target=_write_many, args=(str(root), m, 40)) for m in (3, 4)]
    for w in writers:
        w.start()
    for t in threads:
        t.start()
    reader = StampedCache(root, 50_000_000)
    while any(w.is_alive() for w in writers) or any(t.is_alive() for t in threads):
        data = reader.get("s", "same")
        if data is not None:
            assert len(data) == 200_000
            assert len(set(data)) == 1
            seen.add(data[0])
    for w in writers:
        w.join()
        assert w.exitcode == 0
    for t in threads:
        t.join()
    final = reader.get("s", "same")
    assert final is not None and len(set(final)) == 1 and final[0] in (1, 2, 3, 4)
    assert not [p for p in root.rglob(".tmp-*")]  # no temporary file left behind
