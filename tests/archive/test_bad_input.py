"""Bad input gets a clear error and nothing is half-stored."""

from __future__ import annotations

import errno
import io
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cim.archive import Archive, verify
from cim.archive.formats import ArchiveInputError, TooLargeError, UnsupportedFormatError
from cim.archive.settings import ArchiveSettings
from cim.errors import NotFoundError
from cim.settings import Settings
from cim.storage import StorageError
from cim.storage.local import LocalStorage
from tests.conftest import IFC_DIR

A = IFC_DIR / "IfcOpenHouse_IFC4.ifc"


def _nothing_stored(archive: Archive, engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model_version")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM archive_object")).scalar_one() == 0
    assert [k for k in archive.storage.list("archive/") if "/content/" in k] == []
    assert verify(archive).problems == []


def test_a_file_that_is_not_ifc_is_refused(local_archive: Archive, engine: Engine, tmp_path: Path):
    fake = tmp_path / "model.ifc"
    fake.write_text("hello, this is not a STEP file\n")
    with pytest.raises(UnsupportedFormatError, match="does not start with 'ISO-10303-21;'"):
        local_archive.put(fake, model_key="m")
    other = tmp_path / "drawing.dwg"
    other.write_bytes(b"AC1032")
    with pytest.raises(UnsupportedFormatError, match=r"accepts \.ifc, \.ifczip"):
        local_archive.put(other, model_key="m")
    step = tmp_path / "part.ifc"
    step.write_text("ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('AP214'));\nENDSEC;\n")
    with pytest.raises(UnsupportedFormatError, match="names no IFC schema"):
        local_archive.put(step, model_key="m")
    _nothing_stored(local_archive, engine)


def test_a_file_over_the_size_limit_is_refused(engine: Engine, settings: Settings):
    archive = Archive.open(engine, settings, archive_settings=ArchiveSettings(max_bytes=50_000))
    with pytest.raises(TooLargeError, match="limit is 50000"):
        archive.put(A, model_key="m")
    with pytest.raises(TooLargeError, match="larger than the archive's limit of 50000 bytes"):  # a stream
        archive.put(io.BytesIO(A.read_bytes()), model_key="m", file_name="house.ifc")
    _nothing_stored(archive, engine)


def test_a_zip_bomb_in_an_ifczip_is_refused(local_archive: Archive, engine: Engine, tmp_path: Path):
    bomb = tmp_path / "bomb.ifczip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("model.ifc", "w") as member:
        member.write(A.read_bytes()[:2000])
        zeros = b"\0" * (1 << 20)
        for _ in range(300):
            member.write(zeros)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(TooLargeError, match="zip bomb"):
        local_archive.put(bomb, model_key="m")
    _nothing_stored(local_archive, engine)


def test_a_good_ifczip_is_accepted_and_a_broken_one_refused(local_archive: Archive, tmp_path: Path):
    good = tmp_path / "house.ifczip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(A, "house.ifc")
    info = local_archive.put(good, model_key="zipped")
    assert info.media_type == "application/zip" and info.size_bytes == good.stat().st_size
    broken = tmp_path / "broken.ifczip"
    broken.write_bytes(good.read_bytes()[:100])
    with pytest.raises(UnsupportedFormatError, match="not a ZIP archive"):
        local_archive.put(broken, model_key="zipped")


@pytest.mark.parametrize("key", ["../etc", "a..b", "a/b", "", ".hidden", "x" * 200])
def test_a_model_key_with_dots_or_slashes_is_refused(local_archive: Archive, key: str):
    with pytest.raises(ArchiveInputError, match="invalid model key"):
        local_archive.put(A, model_key=key)


@pytest.mark.parametrize("name", ["../evil.ifc", "a/../../b.ifc", "..ifc", "x\\y.ifc", ".ifc", "a\x00.ifc"])
def test_a_file_name_with_dot_dot_or_folders_is_refused(local_archive: Archive, engine: Engine, name: str):
    with pytest.raises(ArchiveInputError, match="invalid file name"):
        local_archive.put(io.BytesIO(A.read_bytes()), model_key="m", file_name=name)
    _nothing_stored(local_archive, engine)


def test_an_unknown_review_is_refused(local_archive: Archive, engine: Engine):
    with pytest.raises(NotFoundError, match="no review with id 99"):
        local_archive.put(A, model_key="m", review_id=99)
    _nothing_stored(local_archive, engine)


class FullDisk(LocalStorage):
    """Local storage whose disk fills up after ``room`` bytes of content (ENOSPC from the write)."""

    def __init__(self, root: Path, room: int) -> None:
        super().__init__(root)
        self.room = room

    def put(self, key, data, *, overwrite=True):  # type: ignore[no-untyped-def]
        if "/content/" not in key:
            return super().put(key, data, overwrite=overwrite)

        room = self.room

        class Filling:
            def read(self, size: int = -1) -> bytes:
                nonlocal room
                chunk = data.read(size)
                room -= len(chunk)
                if room < 0:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return chunk

        try:
            return super().put(key, Filling(), overwrite=overwrite)
        except OSError as exc:  # what LocalStorage does for a failed os.write
            raise StorageError(f"writing {key!r} failed: the disk is full; nothing was stored") from exc


def test_a_full_disk_during_put_stores_nothing_and_keeps_earlier_versions(
    engine: Engine, settings: Settings, tmp_path: Path
):
    root = settings.data_path / "storage"
    Archive(engine, LocalStorage(root)).put(A, model_key="m")
    full = Archive(engine, FullDisk(root, room=10_000))
    with pytest.raises(StorageError, match="disk is full"):
        full.put(IFC_DIR / "duplex.ifc", model_key="m")
    archive = Archive(engine, LocalStorage(root))
    assert [v.version for v in archive.versions("m")] == [1]
    assert not any(".tmp-" in p.name for p in root.rglob("*"))
    assert verify(archive).problems == []
    assert archive.put(IFC_DIR / "duplex.ifc", model_key="m").version == 2
