"""The project's exception hierarchy.

Domain code raises these only; the command line maps them to exit codes and the HTTP layer maps them
to status codes, each in one table. Messages say what was wrong and what to do about it.
"""

from __future__ import annotations


class CimError(Exception):
    """Root of every error the platform raises on purpose."""

    exit_code: int = 1


class ConfigError(CimError):
    """The deployment's configuration is invalid (a setting, a config file)."""

    exit_code = 2


class CrsError(CimError):
    """A coordinate reference system could not be understood or does not fit the data."""

    exit_code = 10


class DatabaseError(CimError):
    """The database could not be started, reached or migrated."""

    exit_code = 11


class IngestError(CimError):
    """A source file could not be ingested; nothing of it was stored."""

    exit_code = 12


class TilesError(CimError):
    """A tileset could not be built."""

    exit_code = 13


class AnalysisError(CimError):
    """A CIM+ analysis could not run on the stored data."""

    exit_code = 14


class ReviewError(CimError):
    """A BIM pre-review could not be carried out."""

    exit_code = 15


class ArchiveError(CimError):
    """An archive operation failed (missing version, checksum mismatch)."""

    exit_code = 16


class NotFoundError(CimError):
    """A requested object (building, element, dataset, tileset…) does not exist."""

    exit_code = 17


class AuthError(CimError):
    """Missing or invalid API key, or a role that may not do this."""

    exit_code = 18


class PermissionDeniedError(AuthError):
    """A valid API key whose role may not perform the requested action."""
