"""Toy plug-ins that the tests register to show each registry's reach (CLI, API, catalog)."""
