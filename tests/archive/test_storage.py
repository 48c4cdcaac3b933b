"""Both storage backends, and the archive on each: every sample IFC file round-trips byte-identical."""

from __future__ import annotations

import errno
import io
import logging
import os
from pathlib import Path

import ocfl
import pytest
from pydantic import SecretStr

from cim.archive import Archive, verify
from cim.settings import Settings
from cim.storage import MissingObjectError, Storage, StorageError, StorageSettings, open_storage
from tests.archive.conftest import S3_KEY_ID, S3_SECRET
from tests.conftest import IFC_DIR

IFC_FILES = sorted(IFC_DIR.glob("*.ifc"))


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, settings: Settings) -> Storage:
    storage_settings = StorageSettings() if request.param == "local" else request.getfixturevalue("s3_settings")
    return open_storage(settings, storage_settings)


def test_every_sample_ifc_round_trips_byte_identical_through_the_archive(archive: Archive, tmp_path: Path):
    assert len(IFC_FILES) >= 10
    for i, path in enumerate(IFC_FILES):
        archive.put(path, model_key=f"model-{i}", author="archivist")
    for i, path in enumerate(IFC_FILES):
        out = tmp_path / f"{i}.ifc"
        archive.get_to(f"model-{i}", None, out)
        assert out.read_bytes() == path.read_bytes(), path.name
    report = verify(archive)
    assert report.problems == [] and report.files == len(IFC_FILES)


def test_the_s3_storage_root_is_valid_ocfl_when_copied_out_of_the_bucket(s3_archive: Archive, tmp_path: Path):
    for i, path in enumerate(IFC_FILES[:3]):
        s3_archive.put(path, model_key="city-hall", note=f"v{i + 1}")
    mirror = tmp_path / "mirror"
    for key in s3_archive.storage.list("archive/"):
        target = mirror / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3_archive.storage.get(key))
    store = ocfl.StorageRoot(root=str(mirror / "archive"))
    assert store.validate(log_warnings=True), store.log
    assert store.num_objects == store.good_objects == 1 and store.errors == []


def test_storage_streams_ranges_lists_and_deletes(storage: Storage):
    data = bytes(range(256)) * 40_000  # ~10 MB: several S3 multipart parts
    assert storage.put("tiles/city/0.glb", io.BytesIO(data)) == len(data)
    storage.put("tiles/city/tileset.json", b"{}")
    assert storage.size("tiles/city/0.glb") == len(data)
    assert storage.exists("tiles/city/0.glb") and not storage.exists("tiles/city/1.glb")
    assert storage.range("tiles/city/0.glb", 1000, 1010) == data[1000:1010]
    assert b"".join(storage.stream("tiles/city/0.glb", len(data) - 5)) == data[-5:]
    assert storage.get("tiles/city/0.glb") == data
    assert list(storage.list("tiles/city/")) == ["tiles/city/0.glb", "tiles/city/tileset.json"]
    storage.put_chunks("tiles/city/tileset.json", iter([b'{"a"', b": 1}"]))
    assert storage.get("tiles/city/tileset.json") == b'{"a": 1}'
    with pytest.raises(StorageError, match="may not be overwritten"):
        storage.put("tiles/city/tileset.json", b"x", overwrite=False)
    storage.delete("tiles/city/0.glb")
    with pytest.raises(MissingObjectError):
        storage.size("tiles/city/0.glb")
    with pytest.raises(MissingObjectError):
        storage.get("tiles/city/0.glb")


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", "a\\b"])
def test_storage_refuses_keys_that_leave_the_root(storage: Storage, key: str):
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.put(key, b"x")


def test_s3_credentials_never_appear_in_errors_or_logs(
    s3_settings: StorageSettings, settings: Settings, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    assert S3_SECRET not in repr(s3_settings) and S3_SECRET not in str(s3_settings.model_dump())
    wrong = s3_settings.model_copy(update={"bucket": "no-such-bucket"})
    storage = open_storage(settings, wrong)
    with pytest.raises(StorageError) as caught:
        storage.put("a/b", b"data")
    message = str(caught.value)
    assert "no-such-bucket" in message and "NoSuchBucket" in message
    assert S3_SECRET not in message and S3_KEY_ID not in message
    assert S3_SECRET not in caplog.text and S3_KEY_ID not in caplog.text


def test_s3_endpoint_with_credentials_in_the_url_is_refused():
    with pytest.raises(ValueError, match="must not carry credentials"):
        StorageSettings(backend="s3", bucket="b", endpoint="http://AKIA:secret@127.0.0.1:9000")


def test_storage_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CIM_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("CIM_STORAGE_BUCKET", "city")
    monkeypatch.setenv("CIM_STORAGE_PREFIX", "/wuhan/")
    monkeypatch.setenv("CIM_STORAGE_SECRET_ACCESS_KEY", "s3cr3t")
    s = StorageSettings()
    assert (s.backend, s.bucket, s.prefix) == ("s3", "city", "wuhan/")
    assert isinstance(s.secret_access_key, SecretStr) and "s3cr3t" not in repr(s)


def test_an_unknown_backend_is_a_configuration_error(settings: Settings):
    from cim.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown storage backend 'ftp'"):
        open_storage(settings, StorageSettings(backend="ftp"))


def test_s3_multipart_uploads_and_ranged_reads_run_concurrently_and_keep_the_bytes(
    settings: Settings, s3_settings: StorageSettings
):
    storage = open_storage(settings, s3_settings.model_copy(update={"concurrency": 3, "download_concurrency": 3}))
    data = bytes(range(251)) * (23 * 1024 * 4 + 7)  # ≈ 23.6 MB: five 5 MiB parts, the last one short
    assert storage.put("big/object.bin", io.BytesIO(data)) == len(data)
    assert storage.size("big/object.bin") == len(data)
    step = 6 * 1024 * 1024
    chunks = list(storage.stream("big/object.bin", chunk_size=step))
    assert b"".join(chunks) == data and max(map(len, chunks)) == step
    assert b"".join(storage.stream("big/object.bin", 1000, len(data) - 5, chunk_size=step)) == data[1000:-5]
    assert storage.temporaries() == []


def test_get_copies_across_filesystems_when_the_kernel_refuses_copy_file_range(
    local_archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A target on another filesystem (``copy_file_range`` gives EXDEV there) is written with ``sendfile``."""
    source = IFC_FILES[0]
    local_archive.put(source, model_key="cross-fs", author="archivist")

    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    out = tmp_path / "copy.ifc"
    info = local_archive.get_to("cross-fs", None, out)
    assert out.read_bytes() == source.read_bytes() and info.size_bytes == source.stat().st_size
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):  # a real second filesystem (tmpfs), without the patch
        monkeypatch.undo()
        target = shm / f"cim-test-{os.getpid()}.ifc"
        try:
            local_archive.get_to("cross-fs", None, target)
            assert target.read_bytes() == source.read_bytes()
        finally:
            target.unlink(missing_ok=True)
