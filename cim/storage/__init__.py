"""Storage backends shared by the archive and by tile output: one small interface, a registry of backends.

``open_storage(settings)`` returns the backend named by ``CIM_STORAGE_BACKEND`` (``local`` by default, or
``s3``); a new backend is one module that calls :func:`register_backend`.
"""

from cim.storage.base import MissingObjectError, Storage, StorageError, check_key
from cim.storage.registry import BACKENDS, open_storage, register_backend
from cim.storage.settings import StorageSettings

__all__ = [
    "BACKENDS",
    "MissingObjectError",
    "Storage",
    "StorageError",
    "StorageSettings",
    "check_key",
    "open_storage",
    "register_backend",
]
