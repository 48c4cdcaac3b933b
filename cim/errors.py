"""The project's exception hierarchy.

Domain code raises these only; the command line maps them to exit codes and the HTTP layer maps them
to status codes, each in one table. Messages say what was wrong and what to do about it.
"""

from __future__ import annotations

from typing import Any


class CimError(Exception):
    """Root of every error the platform raises on purpose.

    ``exit_code`` is the command line's exit status for it; a subclass names its own in the class statement
    (``class TilesError(CimError, exit_code=13)``) or inherits its parent's.
    """

    exit_code: int = 1

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code


class ConfigError(CimError, exit_code=2):
    """The deployment's configuration is invalid (a setting, a config file)."""


class CrsError(CimError, exit_code=10):
    """A coordinate reference system could not be understood or does not fit the data."""


class DatabaseError(CimError, exit_code=11):
    """The database could not be started, reached or migrated."""


class IngestError(CimError, exit_code=12):
    """A source file could not be ingested; nothing of it was stored."""


class TilesError(CimError, exit_code=13):
    """A tileset could not be built."""


class AnalysisError(CimError, exit_code=14):
    """A CIM+ analysis could not run on the stored data."""


class ReviewError(CimError, exit_code=15):
    """A BIM pre-review could not be carried out."""


class ArchiveError(CimError, exit_code=16):
    """An archive operation failed (missing version, checksum mismatch)."""


class NotFoundError(CimError, exit_code=17):
    """A requested object (building, element, dataset, tileset…) does not exist."""


class AuthError(CimError, exit_code=18):
    """Missing or invalid API key, or a role that may not do this."""


class PermissionDeniedError(AuthError):
    """A valid API key whose role may not perform the requested action."""
