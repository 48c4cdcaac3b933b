"""BagIt (RFC 8493) export of an archived model for handover, made and checked by the ``bagit`` library.

The bag's payload holds every file version (``data/v1/<name>``…), the OCFL inventory
(``data/ocfl/inventory.json``) and ``data/archive-metadata.json`` (history with SM3 digests and the
model's ledger entries); manifests are sha256 and sha512, ``bag-info.txt`` names the model.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

from cim import __version__
from cim.archive import ocfl
from cim.archive.service import Archive
from cim.db import archive as q
from cim.errors import ArchiveError, NotFoundError


def export_bag(archive: Archive, model_key: str, target: Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Write the BagIt package of ``model_key`` into the new folder ``target``; returns a summary."""
    import bagit

    versions = archive.versions(model_key)
    if not versions:
        raise NotFoundError(f"no archived model {model_key!r}")
    target = target.expanduser()
    if target.exists():
        if not overwrite:
            raise ArchiveError(f"{target} exists; choose a new folder or pass --overwrite")
        shutil.rmtree(target)
    staging = target.with_name(f".{target.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        files = []
        for info in versions:
            if info.kind != "version" or info.file_name is None:
                continue
            path = staging / f"v{info.version}" / info.file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                for chunk in archive.open_version(info):
                    out.write(chunk)
            files.append(f"data/v{info.version}/{info.file_name}")
        with archive.engine.connect() as conn:
            obj = q.object_by_key(conn, model_key)
            entries = [
                {
                    "seq": e.seq,
                    "at": e.at.isoformat(),
                    "kind": e.kind,
                    "version": e.version,
                    "payload": e.payload,
                    "prev_hash": e.prev_hash,
                    "entry_hash": e.entry_hash,
                }
                for e in q.ledger_entries(conn, model_key=model_key)
            ]
        assert obj is not None
        (staging / "ocfl").mkdir()
        inventory = archive.storage.get(f"{ocfl.ROOT}{obj.object_path}/inventory.json")
        (staging / "ocfl" / "inventory.json").write_bytes(inventory)
        metadata = {
            "model_key": model_key,
            "object_id": obj.object_id,
            "versions": [v.to_dict() for v in versions],
            "ledger": entries,
            "ledger_hash": "SM3(prev_hash ‖ canonical JSON of the entry); see docs/archive.md",
        }
        (staging / "archive-metadata.json").write_text(json.dumps(metadata, ensure_ascii=False, indent=2))
        bag = bagit.make_bag(
            str(staging),
            {
                "Source-Organization": "CIM platform as-built archive",
                "External-Identifier": obj.object_id,
                "External-Description": f"As-built model {model_key}: {len(files)} file version(s)",
                "Bagging-Date": dt.date.today().isoformat(),
                "Bag-Software-Agent": f"cim-platform {__version__} (bagit-python)",
            },
            checksums=["sha256", "sha512"],
        )
        bag.validate()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"model_key": model_key, "bag": str(target), "files": files, "versions": len(versions)}
