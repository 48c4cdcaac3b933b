"""The Alembic migrations of the platform's schema (``versions/``) and the builders they share (``ddl.py``)."""
