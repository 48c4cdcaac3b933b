"""CIM platform core: settings, the unified CRS, the database, the HTTP API and the command line."""

__version__ = "0.1.0"
