"""The built-in review checks, registered in the order of the reports."""

# isort: off
from cim.review.checks import schema, georef, ids, planning, sunlight, conflicts

# isort: on

__all__ = ["conflicts", "georef", "ids", "planning", "schema", "sunlight"]
