"""The reviewed model's temporary tileset is valid 3D Tiles 1.1 (official schemas, the Khronos glTF validator
and, where installed, the official 3d-tiles-validator) and carries every element's GlobalId."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cim.api.review_tiles import write_review_tileset
from cim.review.files import sha256_of
from cim.review.model import load_model
from cim.settings import Settings
from tests.conftest import SHARED
from tests.review.models import Block, write_model
from tests.tiles.validation import gltf_reports, schema_errors

VALIDATOR = SHARED / "tools" / "3d-tiles-validator"


def test_the_review_tileset_is_valid_and_names_every_element(tmp_path: Path) -> None:
    model = write_model(tmp_path / "m.ifc", Block(30, 28, 60, 52, 2, name="小楼"))
    loaded = load_model(model.path, sha256=sha256_of(model.path), size_bytes=model.path.stat().st_size)
    out = write_review_tileset(loaded, Settings(data_dir=tmp_path / "data"), 7)
    assert out is not None and out.name == "review-7"
    tileset = json.loads((out / "tileset.json").read_text())
    assert schema_errors(tileset) == []
    (report,) = gltf_reports([out / "model.glb"])
    assert report["errors"] == 0, report["messages"][:5]
    from tiles.glb import read_glb

    doc, _ = read_glb((out / "model.glb").read_bytes())
    table = doc["extensions"]["EXT_structural_metadata"]["propertyTables"][0]
    assert table["class"] == "element" and table["count"] == len(model.ids)
    if VALIDATOR.exists():
        result = tmp_path / "report.json"
        subprocess.run(
            [str(VALIDATOR), "--tilesetFile", str(out / "tileset.json"), "--reportFile", str(result)],
            check=False,
            capture_output=True,
            timeout=300,
        )
        assert json.loads(result.read_text())["numErrors"] == 0
