"""Run the HTTP service: granian (Rust HTTP layer, default) or uvicorn, both in factory mode.

Every worker process builds its own app with :func:`cim.api.app.create_app`. granian is the default because
its HTTP layer leaves more CPU to the app: on the 2-core benchmark machine it served tile files about 1.5×
faster than uvicorn (``benchmarks/serve_tiles.py``).
"""

from __future__ import annotations

import os
from typing import Literal

from cim.errors import ConfigError
from cim.settings import Settings

TARGET = "cim.api.app:create_app"
Server = Literal["granian", "uvicorn"]
Front = Literal["none", "nginx"]


def run_server(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    server: Server = "granian",
    log_level: str = "info",
    front: Front = "none",
) -> None:
    """Serve :func:`cim.api.app.create_app` until interrupted.

    The database is started and migrated once here, then its URL is handed to the workers through
    ``DATABASE_URL`` (so workers neither start the cluster nor migrate concurrently). With
    ``front="nginx"`` a private nginx (:mod:`cim.front`) listens on ``host:port`` and serves the tile files
    itself; the app listens on a free loopback port behind it, and nginx is stopped when the app stops.
    """
    from cim.db.engine import database_url

    os.environ["DATABASE_URL"] = database_url(settings)
    os.environ["CIM_DATA_DIR"] = str(settings.data_path)
    os.environ.setdefault("CIM_SENSING_MQTT", "true")  # workers start the broker when none runs, and subscribe
    if front == "nginx":
        _serve_behind_nginx(settings, host, port, workers, server, log_level)
        return
    if front != "none":
        raise ConfigError(f"unknown front {front!r}; use none or nginx")
    _serve(host, port, workers, server, log_level)


def _serve_behind_nginx(settings: Settings, host: str, port: int, workers: int, server: Server, log_level: str) -> None:
    from cim.api.settings import ApiSettings
    from cim.db.cluster import free_port
    from cim.front import NginxFront

    # the app answers for nginx: it takes the caller's address and host from nginx's X-Forwarded-* headers
    os.environ.setdefault("CIM_API_TRUSTED_PROXIES", '["127.0.0.1/32"]')
    api = ApiSettings()
    app_port = free_port()
    nginx = NginxFront(settings.data_path)
    config = nginx.config(
        host=host,
        port=port,
        app_port=app_port,
        workers=workers,
        cors_origins=api.cors_origins,
        reads_require_key=api.reads_require_key,
        max_age=api.tile_cache_seconds,
        access_log=api.access_log,
    )
    nginx.up(config)
    try:
        _serve("127.0.0.1", app_port, workers, server, log_level)
    finally:
        nginx.down()


def _serve(host: str, port: int, workers: int, server: Server, log_level: str) -> None:
    if server == "granian":
        _granian(host, port, workers, log_level)
    elif server == "uvicorn":
        _uvicorn(host, port, workers, log_level)
    else:
        raise ConfigError(f"unknown server {server!r}; use granian or uvicorn")


def _granian(host: str, port: int, workers: int, log_level: str) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes
    from granian.log import LogLevels

    Granian(
        TARGET,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,  # no HTTP/2 sniffing per connection; browsers talk HTTP/1.1 to a plain-HTTP origin
        workers=workers,
        runtime_mode=RuntimeModes.st,
        loop=Loops.uvloop,
        websockets=False,
        factory=True,
        log_level=LogLevels(log_level.lower()),
        log_access=False,  # the app writes JSON access logs itself
    ).serve()


def _uvicorn(host: str, port: int, workers: int, log_level: str) -> None:
    import uvicorn

    uvicorn.run(
        TARGET,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # the app writes JSON access logs itself
        log_level=log_level,
        proxy_headers=False,  # X-Forwarded-* only from CIM_API_TRUSTED_PROXIES (cim.api.middleware.PublicUrl)
        server_header=False,
    )
