"""Crash safety with real processes: kill -9 at any step of a put leaves the whole version or nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ocfl
import pytest
from sqlalchemy import Engine

from cim.archive.service import CRASH_ENV, Archive
from cim.archive.verify import verify
from cim.errors import NotFoundError
from cim.settings import Settings
from cim.storage import StorageSettings
from tests.archive.conftest import storage_root
from tests.conftest import IFC_DIR

A = IFC_DIR / "IfcOpenHouse_IFC4.ifc"
B = IFC_DIR / "slab-openings.ifc"


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ, DATABASE_URL=str(settings.database_url), CIM_DATA_DIR=str(settings.data_dir))
    env.pop(CRASH_ENV, None)
    env.update(extra)
    return env


def cim(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cim", *args], env=_env(settings, **env), capture_output=True, text=True, timeout=300
    )


def _archive(engine: Engine, settings: Settings, storage: StorageSettings | None = None) -> Archive:
    """The archive as a new process would open it: what the killed puts left is read back in this process
    (only the puts that are killed, or that race, need a process of their own)."""
    return Archive.open(engine, settings, storage_settings=storage or StorageSettings())


def _verify(
    engine: Engine, settings: Settings, storage: StorageSettings | None = None, *, repair: bool = False
) -> dict:
    return verify(_archive(engine, settings, storage), repair=repair).to_dict()


def _versions(engine: Engine, settings: Settings) -> list[int]:
    """The committed versions of the model (none when every put was killed before its first commit)."""
    try:
        return [v.version for v in _archive(engine, settings).versions("house")]
    except NotFoundError:
        return []


def _put(engine: Engine, settings: Settings, file: Path, storage: StorageSettings | None = None) -> int:
    return _archive(engine, settings, storage).put(file, model_key="house").version


def _get(engine: Engine, settings: Settings, version: int, out: Path) -> bytes:
    _archive(engine, settings).get_to("house", version, out)
    return out.read_bytes()


def _ocfl_valid(settings: Settings) -> bool:
    store = ocfl.StorageRoot(root=str(storage_root(settings)))
    return bool(store.validate()) and store.num_objects == store.good_objects


@pytest.mark.parametrize("step", ["after-content", "after-version-inventory", "after-root-inventory", "before-commit"])
def test_a_put_killed_before_its_commit_leaves_nothing_and_verify_reports_the_orphan(
    engine: Engine, settings: Settings, step: str
):
    assert _put(engine, settings, A) == 1
    killed = cim(settings, "archive", "put", str(B), "--model", "house", **{CRASH_ENV: step})
    assert killed.returncode == -signal.SIGKILL
    assert _versions(engine, settings) == [1]
    report = _verify(engine, settings)
    found = {p["kind"]: p["what"] for p in report["problems"]}
    assert "/v2" in found.pop("orphan")
    if step in ("after-root-inventory", "before-commit"):  # the root inventory names the uncommitted v2
        assert found.pop("inventory-lagging").endswith("/inventory.json")
    assert found == {}
    # the next put removes the orphan and gets version 2; everything is clean again
    assert cim(settings, "archive", "put", str(B), "--model", "house").returncode == 0
    assert _versions(engine, settings) == [1, 2]
    assert _verify(engine, settings)["problems"] == []
    assert _ocfl_valid(settings)


def test_a_first_put_killed_before_its_commit_leaves_an_orphan_object_that_repair_removes(
    engine: Engine, settings: Settings
):
    killed = cim(settings, "archive", "put", str(A), "--model", "house", **{CRASH_ENV: "before-commit"})
    assert killed.returncode == -signal.SIGKILL
    report = _verify(engine, settings)
    assert [p["kind"] for p in report["problems"]] == ["orphan"]
    assert cim(settings, "archive", "verify", "--repair").returncode != 0  # reports what it repaired
    assert _verify(engine, settings)["problems"] == []
    assert _ocfl_valid(settings)


def test_a_put_killed_right_after_its_commit_is_whole(engine: Engine, settings: Settings, tmp_path: Path):
    assert _put(engine, settings, A) == 1
    killed = cim(settings, "archive", "put", str(B), "--model", "house", **{CRASH_ENV: "after-commit"})
    assert killed.returncode == -signal.SIGKILL
    assert _versions(engine, settings) == [1, 2]
    assert _get(engine, settings, 2, tmp_path / "v2.ifc") == B.read_bytes()
    assert _verify(engine, settings)["problems"] == []
    assert _ocfl_valid(settings)


def _big_ifc(path: Path, mib: int) -> Path:
    head = A.read_bytes()
    filler = (b"/* " + b"x" * 1020 + b" */\n") * 1024
    with path.open("wb") as fh:
        fh.write(head)
        for _ in range(mib):
            fh.write(filler)
    return path


def _writing(settings: Settings) -> bool:
    root = settings.data_path / "storage" / "archive"
    return root.is_dir() and any(".tmp-" in p.name for p in root.rglob("*"))


def test_puts_killed_at_random_moments_never_leave_a_partial_version(
    engine: Engine, settings: Settings, tmp_path: Path
):
    big = _big_ifc(tmp_path / "big.ifc", 96)
    rng = random.Random(15)
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-m", "cim", "archive", "put", str(big), "--model", "house"],
            env=_env(settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # wait until the put is writing (a loaded machine may take seconds to start Python), then kill it
        # at a random moment of the write, commit or inventory update
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not _writing(settings):
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    whole = big.read_bytes()
    for n in _versions(engine, settings):  # every committed version is whole
        assert _get(engine, settings, n, tmp_path / f"v{n}.ifc") == whole
    report = _verify(engine, settings)
    assert {p["kind"] for p in report["problems"]} <= {"orphan", "inventory-lagging"}
    assert all(
        "/v" in p["what"] or p["kind"] == "inventory-lagging" or p["what"].endswith("/") for p in report["problems"]
    )
    _verify(engine, settings, repair=True)
    assert _verify(engine, settings)["problems"] == []
    assert _ocfl_valid(settings)


def test_concurrent_puts_of_one_model_get_distinct_ordered_versions(engine: Engine, settings: Settings, tmp_path: Path):
    files = sorted(IFC_DIR.glob("*.ifc"))[:4]
    assert cim(settings, "db", "migrate").returncode == 0
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda f: cim(settings, "archive", "put", str(f), "--model", "house", "--json"), files))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    versions = sorted(json.loads(r.stdout)["version"] for r in results)
    assert versions == [1, 2, 3, 4]
    by_version = {v.version: v for v in _archive(engine, settings).versions("house")}
    for r, f in zip(results, files, strict=True):
        n = json.loads(r.stdout)["version"]
        assert _get(engine, settings, n, tmp_path / f"out{n}") == f.read_bytes()
        assert by_version[n].file_name == f.name
    assert _verify(engine, settings)["problems"] == []
    assert _ocfl_valid(settings)


def _s3_env(s3: StorageSettings) -> dict[str, str]:
    assert s3.endpoint and s3.bucket and s3.access_key_id and s3.secret_access_key
    return {
        "CIM_STORAGE_BACKEND": "s3",
        "CIM_STORAGE_ENDPOINT": s3.endpoint,
        "CIM_STORAGE_BUCKET": s3.bucket,
        "CIM_STORAGE_PREFIX": s3.prefix,
        "CIM_STORAGE_ACCESS_KEY_ID": s3.access_key_id.get_secret_value(),
        "CIM_STORAGE_SECRET_ACCESS_KEY": s3.secret_access_key.get_secret_value(),
        "CIM_STORAGE_PART_SIZE_MIB": "5",
    }


def _s3_uploads(s3: StorageSettings) -> list[dict]:
    """The bucket's unfinished multipart uploads, asked with an independent client (boto3 itself)."""
    import boto3

    assert s3.access_key_id and s3.secret_access_key
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key_id.get_secret_value(),
        aws_secret_access_key=s3.secret_access_key.get_secret_value(),
        region_name="us-east-1",
    )
    return list(client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []))


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_put_killed_mid_content_leaves_a_partial_write_that_verify_repair_discards(
    engine: Engine, settings: Settings, tmp_path: Path, backend: str, request: pytest.FixtureRequest
):
    s3: StorageSettings | None = request.getfixturevalue("s3_settings") if backend == "s3" else None
    env = _s3_env(s3) if s3 is not None else {}
    big = _big_ifc(tmp_path / "big.ifc", 12)  # more than two 5 MiB parts: a multipart upload on S3
    assert _put(engine, settings, A, s3) == 1
    killed = cim(settings, "archive", "put", str(big), "--model", "house", **env, **{CRASH_ENV: "mid-content"})
    assert killed.returncode == -signal.SIGKILL
    if s3 is not None:
        uploads = _s3_uploads(s3)
        assert len(uploads) == 1 and "/v2/content/big.ifc" in uploads[0]["Key"]
    report = _verify(engine, settings, s3)
    assert [p["kind"] for p in report["problems"]] == ["orphan"]
    problem = report["problems"][0]
    assert "/v2/content/" in problem["what"]
    assert ("multipart upload" if s3 else "temporary file") in problem["detail"]
    repaired = cim(settings, "archive", "verify", "--repair", "--json", **env)
    assert repaired.returncode != 0  # it reports what it repaired
    assert "aborted" in json.loads(repaired.stdout)["problems"][0]["detail"]
    if s3 is not None:
        assert _s3_uploads(s3) == []
    else:
        assert not _writing(settings)
    after = _verify(engine, settings, s3)
    assert after["problems"] == [] and after["versions"] == 1
