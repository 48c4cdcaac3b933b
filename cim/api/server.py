"""Run the HTTP service with uvicorn (factory mode, so every worker process builds its own app)."""

from __future__ import annotations

import os

from cim.settings import Settings


def run_server(
    settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, log_level: str = "info"
) -> None:
    """Serve :func:`cim.api.app.create_app` until interrupted.

    The database is started and migrated once here, then its URL is handed to the workers through
    ``DATABASE_URL`` (so workers neither start the cluster nor migrate concurrently).
    """
    import uvicorn

    from cim.db.engine import database_url

    os.environ["DATABASE_URL"] = database_url(settings)
    os.environ["CIM_DATA_DIR"] = str(settings.data_path)
    uvicorn.run(
        "cim.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # the app writes JSON access logs itself
        log_level=log_level,
        proxy_headers=True,
        server_header=False,
    )
