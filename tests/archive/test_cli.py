"""The archivist's command line: put, log, get, diff, verify, export, ledger, delete (all with --json)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import bagit
import ocfl

from cim.settings import Settings
from tests.archive.conftest import storage_root
from tests.conftest import IFC_DIR

HOUSE = IFC_DIR / "AC20-FZK-Haus.ifc"


def _edited_copy(src: Path, dst: Path) -> Path:
    """A second version of a model: one wall renamed and one element removed (by editing the STEP text)."""
    text = src.read_text(errors="surrogateescape")
    text = text.replace("'Wand-Ext-ERDG-1'", "'Wand-Ext-ERDG-1 renamed'", 1)
    dst.write_text(text, errors="surrogateescape")
    return dst


def test_archivist_puts_two_versions_and_gets_each_back_byte_identical(run_cim, settings: Settings, tmp_path: Path):
    first = run_cim("archive", "put", str(HOUSE), "--model", "fzk-haus", "--note", "as built", "--json")
    assert first.exit_code == 0, first.stderr
    v1 = json.loads(first.stdout)
    assert v1["version"] == 1 and v1["sm3"] and len(v1["sha512"]) == 128
    second_file = _edited_copy(HOUSE, tmp_path / "AC20-FZK-Haus.ifc")
    v2 = json.loads(run_cim("archive", "put", str(second_file), "--model", "fzk-haus", "--json").stdout)
    assert v2["version"] == 2

    log = json.loads(run_cim("archive", "log", "--model", "fzk-haus", "--json").stdout)
    assert [v["version"] for v in log] == [1, 2]
    assert log[0]["note"] == "as built"

    out1, out2 = tmp_path / "got1.ifc", tmp_path / "got2.ifc"
    assert run_cim("archive", "get", "--model", "fzk-haus", "--version", "1", "-o", str(out1)).exit_code == 0
    assert run_cim("archive", "get", "--model", "fzk-haus", "-o", str(out2), "--json").exit_code == 0
    assert out1.read_bytes() == HOUSE.read_bytes()
    assert out2.read_bytes() == second_file.read_bytes()

    store = ocfl.StorageRoot(root=str(storage_root(settings)))
    assert store.validate(log_warnings=True), store.log
    assert store.num_objects == store.good_objects == 1
    assert store.errors == []

    verified = run_cim("archive", "verify", "--json")
    assert verified.exit_code == 0, verified.stdout
    report = json.loads(verified.stdout)
    assert report["ok"] and report["files"] == 2 and report["problems"] == []


def test_diff_names_the_changed_element_by_global_id(run_cim, tmp_path: Path):
    run_cim("archive", "put", str(HOUSE), "--model", "fzk-haus")
    run_cim("archive", "put", str(_edited_copy(HOUSE, tmp_path / "AC20-FZK-Haus.ifc")), "--model", "fzk-haus")
    result = run_cim("archive", "diff", "--model", "fzk-haus", "1", "2", "--json")
    assert result.exit_code == 0, result.stderr
    diff = json.loads(result.stdout)
    assert diff["counts"]["changed"] == 1
    changed = diff["changed"][0]
    assert len(changed["global_id"]) == 22 and "attributes" in changed["changes"]
    assert changed["name"] == "Wand-Ext-ERDG-1 renamed"


def test_export_is_a_valid_bagit_package_with_every_version(run_cim, tmp_path: Path):
    run_cim("archive", "put", str(HOUSE), "--model", "fzk-haus")
    run_cim("archive", "put", str(_edited_copy(HOUSE, tmp_path / "AC20-FZK-Haus.ifc")), "--model", "fzk-haus")
    out = tmp_path / "handover"
    result = run_cim("archive", "export", "--model", "fzk-haus", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    bag = bagit.Bag(str(out))
    bag.validate()  # raises on any problem
    assert (out / "data" / "v1" / "AC20-FZK-Haus.ifc").read_bytes() == HOUSE.read_bytes()
    assert bag.info["External-Identifier"] == "urn:cim:model:fzk-haus"
    metadata = json.loads((out / "data" / "archive-metadata.json").read_text())
    assert [v["version"] for v in metadata["versions"]] == [1, 2]
    again = run_cim("archive", "export", "--model", "fzk-haus", "-o", str(out))
    assert again.exit_code != 0 and "exists" in again.stderr


def test_ledger_root_of_today_changes_with_each_event_and_is_printed(run_cim):
    run_cim("archive", "put", str(HOUSE), "--model", "fzk-haus")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    first = json.loads(run_cim("archive", "ledger", "--root", today, "--json").stdout)
    assert first["entries"] >= 1 and len(first["root"]) == 64
    run_cim("archive", "put", str(HOUSE), "--model", "fzk-haus")
    second = json.loads(run_cim("archive", "ledger", "--root", today, "--json").stdout)
    assert second["entries"] > first["entries"] and second["root"] != first["root"]
    plain = run_cim("archive", "ledger", "--root", today)
    assert plain.stdout.strip() == second["root"]
    bad = run_cim("archive", "ledger", "--root", "yesterday")
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.stderr


def test_delete_needs_a_reason_and_leaves_a_tombstone_in_the_history(run_cim, settings: Settings, tmp_path: Path):
    run_cim("archive", "put", str(HOUSE), "--model", "fzk-haus")
    assert run_cim("archive", "delete", "--model", "fzk-haus", "--reason", " ").exit_code != 0
    deleted = run_cim("archive", "delete", "--model", "fzk-haus", "--reason", "superseded by survey", "--json")
    assert deleted.exit_code == 0, deleted.stderr
    assert json.loads(deleted.stdout)["kind"] == "tombstone"
    log = json.loads(run_cim("archive", "log", "--model", "fzk-haus", "--json").stdout)
    assert [(v["version"], v["kind"], v["reason"]) for v in log] == [
        (1, "version", None),
        (2, "tombstone", "superseded by survey"),
    ]
    latest = run_cim("archive", "get", "--model", "fzk-haus", "-o", str(tmp_path / "x.ifc"))
    assert latest.exit_code != 0 and "deleted" in latest.stderr
    old = run_cim("archive", "get", "--model", "fzk-haus", "--version", "1", "-o", str(tmp_path / "v1.ifc"))
    assert old.exit_code == 0 and (tmp_path / "v1.ifc").read_bytes() == HOUSE.read_bytes()
    assert run_cim("archive", "verify").exit_code == 0
    store = ocfl.StorageRoot(root=str(storage_root(settings)))  # the tombstone is a valid OCFL version
    assert store.validate(log_warnings=True) and store.good_objects == 1 and store.errors == []


def test_unknown_model_and_version_are_clear_errors(run_cim, tmp_path: Path):
    missing = run_cim("archive", "get", "--model", "nope", "-o", str(tmp_path / "x.ifc"))
    assert missing.exit_code == 17 and "no archived model 'nope'" in missing.stderr
    run_cim("archive", "put", str(HOUSE), "--model", "fzk-haus")
    no_version = run_cim("archive", "get", "--model", "fzk-haus", "--version", "9", "-o", str(tmp_path / "x.ifc"))
    assert no_version.exit_code == 17 and "no version 9" in no_version.stderr
    assert len(no_version.stderr.strip().splitlines()) == 1
    assert run_cim("archive", "log", "--model", "nope").exit_code == 17
