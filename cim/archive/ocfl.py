"""OCFL 1.1 on a storage backend: the storage root, object paths (extension 0003) and inventories.

Layout under the storage key prefix :data:`ROOT` (``archive/``)::

    0=ocfl_1.1                       storage root declaration
    ocfl_layout.json                 names the layout extension
    extensions/0003-hash-and-id-n-tuple-storage-layout/config.json
    <aaa>/<bbb>/<ccc>/<encoded id>/  one object per model (sha256 of the object id, three 3-char tuples)
        0=ocfl_object_1.1
        inventory.json, inventory.json.sha512      always a copy of the head version's
        v1/inventory.json, v1/inventory.json.sha512
        v1/content/<file name>       a file appears once, in the version that first held its bytes

Inventories use sha512 for content addresses and carry a sha256 ``fixity`` block.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from cim.storage import Storage

ROOT = "archive/"
SPEC = "ocfl_1.1"
OBJECT_DECLARATION = "0=ocfl_object_1.1"
LAYOUT = "0003-hash-and-id-n-tuple-storage-layout"
INVENTORY_TYPE = "https://ocfl.io/1.1/spec/#inventory"
_SAFE = re.compile(r"[A-Za-z0-9_-]")


def object_id_of(model_key: str) -> str:
    """The OCFL object id (a URN) of a model key."""
    return f"urn:cim:model:{model_key}"


def object_path_of(object_id: str) -> str:
    """The object's folder relative to the storage root (extension 0003: sha256, 3 tuples of 3, encoded id)."""
    digest = hashlib.sha256(object_id.encode()).hexdigest()
    encoded = "".join(c if _SAFE.fullmatch(c) else "".join(f"%{b:02x}" for b in c.encode()) for c in object_id)
    if len(encoded) > 100:
        encoded = f"{encoded[:100]}-{digest}"
    return f"{digest[0:3]}/{digest[3:6]}/{digest[6:9]}/{encoded}"


def version_dir(n: int) -> str:
    """``v1``, ``v2``… (not zero-padded)."""
    return f"v{n}"


def ensure_root(storage: Storage) -> None:
    """Write the storage root declaration and layout description once."""
    if storage.exists(ROOT + f"0={SPEC}"):
        return
    storage.put(
        ROOT + f"extensions/{LAYOUT}/config.json",
        _json(
            {
                "extensionName": LAYOUT,
                "digestAlgorithm": "sha256",
                "tupleSize": 3,
                "numberOfTuples": 3,
            }
        ),
    )
    storage.put(
        ROOT + "ocfl_layout.json",
        _json(
            {
                "extension": LAYOUT,
                "description": "Hashed n-tuple trees with object id encapsulating directory (extension 0003)",
            }
        ),
    )
    storage.put(ROOT + f"0={SPEC}", f"{SPEC}\n".encode())


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode()


def new_inventory(object_id: str) -> dict[str, Any]:
    """An inventory with no versions yet."""
    return {
        "id": object_id,
        "type": INVENTORY_TYPE,
        "digestAlgorithm": "sha512",
        "head": "v0",
        "contentDirectory": "content",
        "fixity": {"sha256": {}},
        "manifest": {},
        "versions": {},
    }


def add_version(
    inventory: dict[str, Any],
    *,
    n: int,
    created: str,
    message: str,
    user_name: str,
    user_address: str,
    file_name: str | None,
    sha512: str | None = None,
    sha256: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The inventory with version ``n`` appended; and the content path to write (None: bytes already stored).

    ``file_name=None`` appends a tombstone version with an empty state. The input is not modified.
    """
    inv = json.loads(json.dumps(inventory))
    vd = version_dir(n)
    content_path = None
    state: dict[str, list[str]] = {}
    if file_name is not None:
        assert sha512 is not None and sha256 is not None
        if sha512 not in inv["manifest"]:
            content_path = f"{vd}/content/{file_name}"
            inv["manifest"][sha512] = [content_path]
            inv["fixity"]["sha256"].setdefault(sha256, []).append(content_path)
        state = {sha512: [file_name]}
    inv["versions"][vd] = {
        "created": created,
        "message": message,
        "state": state,
        "user": {"name": user_name, "address": user_address},
    }
    inv["head"] = vd
    return inv, content_path


def inventory_bytes(inventory: dict[str, Any]) -> tuple[bytes, str]:
    """The serialised inventory and its sidecar's text."""
    data = _json(inventory)
    return data, f"{hashlib.sha512(data).hexdigest()}  inventory.json\n"


def write_inventory(storage: Storage, prefix: str, inventory: dict[str, Any]) -> None:
    """Write ``inventory.json`` and then its sidecar under ``prefix`` (an object or version folder)."""
    data, sidecar = inventory_bytes(inventory)
    storage.put(prefix + "inventory.json", data)
    storage.put(prefix + "inventory.json.sha512", sidecar.encode())


def read_inventory(storage: Storage, prefix: str) -> dict[str, Any] | None:
    """The inventory under ``prefix`` if it exists and matches its sidecar; else None."""
    try:
        data = storage.get(prefix + "inventory.json")
        sidecar = storage.get(prefix + "inventory.json.sha512").decode().split()[0]
    except Exception:
        return None
    if hashlib.sha512(data).hexdigest() != sidecar:
        return None
    value: dict[str, Any] = json.loads(data)
    return value


def content_path_of(inventory: dict[str, Any], version: int) -> tuple[str, str] | None:
    """(content path, logical file name) of a version's single file, or None for a tombstone."""
    state = inventory["versions"][version_dir(version)]["state"]
    for digest, names in state.items():
        return inventory["manifest"][digest][0], names[0]
    return None
