"""The shared upload helpers of ``/archive``, ``/reviews`` and ``/jobs/ingest`` (``cim.api.uploads``)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cim.api.errors import PayloadTooLargeError
from cim.api.uploads import copy_upload, safe_name


def test_an_upload_is_copied_from_its_start_in_chunks(tmp_path: Path):
    data = bytes(range(256)) * 10_000  # 2.5 MB: several chunks
    source = io.BytesIO(data)
    source.read(100)  # a reader that sniffed the head
    assert copy_upload(source, tmp_path / "a.ifc", limit=len(data)) == len(data)
    assert (tmp_path / "a.ifc").read_bytes() == data


def test_an_upload_over_the_limit_is_refused_and_leaves_no_file(tmp_path: Path):
    source = io.BytesIO(b"x" * (3 << 20))
    with pytest.raises(PayloadTooLargeError, match=r"big\.ifc is over the review limit of 1 MiB"):
        copy_upload(source, tmp_path / "b.ifc", limit=1 << 20, name="big.ifc", limit_name="review")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_never_overwritten(tmp_path: Path):
    (tmp_path / "c.ifc").write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        copy_upload(io.BytesIO(b"new"), tmp_path / "c.ifc")
    assert (tmp_path / "c.ifc").read_bytes() == b"kept"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/passwd", "passwd.ifc"), ("模型 v2.ifc", "v2.ifc"), (None, "model.ifc"), ("..", "model.ifc")],
)
def test_safe_names_stay_in_their_folder(name: str | None, expected: str):
    assert safe_name(name, ".ifc", "model") == expected
