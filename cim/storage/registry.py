"""The registry of storage backends: name → factory; ``open_storage`` builds the configured one."""

from __future__ import annotations

from collections.abc import Callable

from cim.errors import ConfigError
from cim.settings import Settings
from cim.storage.base import Storage
from cim.storage.settings import StorageSettings

BackendFactory = Callable[[StorageSettings, Settings], Storage]

BACKENDS: dict[str, BackendFactory] = {}
"""Registered backends by name (``local``, ``s3``…)."""


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Decorator that registers a backend factory under ``name``."""

    def decorate(factory: BackendFactory) -> BackendFactory:
        BACKENDS[name] = factory
        return factory

    return decorate


def _load_builtins() -> None:
    # Imported for their registration; boto3 is only imported when the s3 backend is used.
    from cim.storage import local, s3  # noqa: F401


def open_storage(settings: Settings, storage_settings: StorageSettings | None = None) -> Storage:
    """The storage backend configured by ``CIM_STORAGE_*`` (or ``storage_settings``)."""
    _load_builtins()
    storage_settings = storage_settings or StorageSettings()
    factory = BACKENDS.get(storage_settings.backend)
    if factory is None:
        raise ConfigError(
            f"unknown storage backend {storage_settings.backend!r} (CIM_STORAGE_BACKEND); "
            f"known: {', '.join(sorted(BACKENDS))}"
        )
    return factory(storage_settings, settings)
