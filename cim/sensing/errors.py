"""Errors of the sensing package; the HTTP layer maps them to the SensorThings error shape."""

from __future__ import annotations

from cim.errors import CimError, NotFoundError


class SensingError(CimError):
    """A SensorThings or MQTT request could not be carried out (HTTP 400 unless a subclass says otherwise)."""

    exit_code = 19


class StaBadRequestError(SensingError):
    """Malformed request: bad JSON, unknown property, invalid query option, wrong result type (HTTP 400)."""


class StaNotFoundError(NotFoundError):
    """The addressed entity does not exist (HTTP 404)."""


class StaConflictError(SensingError):
    """The request conflicts with stored data, e.g. a second observation at the same time (HTTP 409)."""


class BrokerError(SensingError):
    """The MQTT broker could not be started, reached or configured."""
