"""The app factory: one FastAPI service for tiles, OGC API – Features, detail endpoints, jobs and analyses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from cim import __version__
from cim.api.job_runner import JobRunner
from cim.api.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    HeadMiddleware,
    JsonCORSMiddleware,
    PrivateCacheMiddleware,
    PublicUrl,
    UrlLimitMiddleware,
    configure_logging,
)
from cim.api.openapi import to_openapi30
from cim.api.security import KeyVerifier
from cim.api.settings import ApiSettings, ViewerSettings
from cim.api.tiles import FastTilePath, TileFiles, published_tiles, tiles_openapi_path
from cim.settings import Settings

DESCRIPTION = """\
3D CIM platform: 3D Tiles and terrain, OGC API – Features (Part 1 core, GeoJSON, OpenAPI 3.0; Part 2 CRS
by reference: CRS84 by default, CGCS2000 EPSG:4490, WGS 84 and the CGCS2000 Gauss–Krüger zones on request),
building and element details, ingest and tile jobs, and CIM+ analyses.

Reads are open unless the deployment requires a key; writes need an API key (`X-API-Key` header or
`Authorization: Bearer …`) whose role may do the write. Errors are JSON: `{"code", "title", "detail"}`.
"""


class CimApp(FastAPI):
    """FastAPI with a short path for tile GETs/HEADs: they skip the middleware stack and the router."""

    fast_tiles: ASGIApp | None = None
    public_url: PublicUrl | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.public_url is not None:
            scope = self.public_url.rewrite(scope)
        if (
            self.fast_tiles is not None
            and scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and get_route_path(scope).startswith("/tiles/")
        ):
            await self.fast_tiles(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    api_settings: ApiSettings | None = None,
    viewer_settings: ViewerSettings | None = None,
) -> FastAPI:
    """Build the HTTP service. Settings are read from the environment here when not given (never at import).

    Connects to the platform database (``DATABASE_URL`` or the private cluster, started when needed);
    bad configuration stops the service here with a :class:`~cim.errors.ConfigError`.
    """
    from cim.api import analysis, reviews
    from cim.api import sensing as sensing_api
    from cim.api.archive import router as archive_router
    from cim.api.basemap import BasemapFactory
    from cim.api.catalog import CatalogFactory
    from cim.api.dependencies import ReadsFromPrimary
    from cim.api.details import DetailsFactory
    from cim.api.errors import install_error_handlers
    from cim.api.features import FeaturesFactory
    from cim.api.jobs import JobsFactory
    from cim.api.labels import LabelsFactory
    from cim.api.landing import LandingFactory
    from cim.api.openapi import mount_docs
    from cim.api.overview import OverviewFactory
    from cim.api.replica import ReadRoutingMiddleware
    from cim.api.replica import router as replica_router
    from cim.api.viewer import check_viewer_settings, mount_viewer
    from cim.api.vocabulary import VocabularyFactory
    from cim.api.warmup import CacheWarmer
    from cim.db.engine import database_url, make_app_engine
    from cim.db.routing import RoutingEngine

    settings = settings or Settings()
    api_settings = api_settings or ApiSettings()
    viewer_settings = viewer_settings or ViewerSettings()
    check_viewer_settings(viewer_settings)  # fail before connecting to anything
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(app.state.sensing.start)
        warmer = CacheWarmer(app.state, overview) if api_settings.warm_caches else None
        app.state.warmer = warmer
        if warmer is not None:
            warmer.start()  # in the background: the service answers at once, a request waits for its answer
        yield
        if warmer is not None:
            await run_in_threadpool(warmer.stop)  # before the pool it reads from is closed
        await run_in_threadpool(app.state.sensing.stop)
        app.state.jobs.shutdown()  # running jobs finish; their state is in the job table
        app.state.engine.dispose()

    app = CimApp(
        lifespan=lifespan,
        title="CIM platform",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # served from local assets by cim.api.docs (no CDN: intranets)
        redoc_url=None,
    )
    app.public_url = PublicUrl(api_settings.public_base_url, api_settings.trusted_proxies)
    app.state.settings = settings
    app.state.api_settings = api_settings
    app.state.engine = make_app_engine(settings, database_url(settings), pool_size=10, max_overflow=10)
    app.state.key_verifier = KeyVerifier(  # it reads key rows in engine.begin(): on the primary, even in a GET
        app.state.engine,
        failure_limit=api_settings.auth_failure_limit,
        failure_window_seconds=api_settings.auth_failure_window_seconds,
    )
    app.state.jobs = JobRunner(app.state.engine, settings, workers=api_settings.job_workers)
    install_error_handlers(app)
    sensing_api.attach_sensing(app, settings)

    tiles = TileFiles(
        settings.data_path / "tiles",
        max_age=api_settings.tile_cache_seconds,
        memory_cache_bytes=api_settings.tile_memory_cache_bytes,
        key_check=app.state.key_verifier.verify if api_settings.reads_require_key else None,
        published=published_tiles(settings),
    )
    app.state.tiles = tiles
    app.mount("/tiles", tiles, name="tiles")
    fast: ASGIApp = UrlLimitMiddleware(FastTilePath(tiles, api_settings.cors_origins), api_settings.url_limit_bytes)
    app.fast_tiles = AccessLogMiddleware(fast) if api_settings.access_log else fast

    app.include_router(LandingFactory().router)
    app.include_router(CatalogFactory().router)
    app.include_router(FeaturesFactory().router)
    app.include_router(DetailsFactory().router)
    app.include_router(JobsFactory().router, dependencies=[ReadsFromPrimary])
    app.include_router(VocabularyFactory().router)
    app.include_router(analysis.router)
    app.include_router(reviews.router, dependencies=[ReadsFromPrimary])
    app.include_router(archive_router)
    app.include_router(sensing_api.router)
    app.include_router(replica_router)
    overview = OverviewFactory()  # its answers are warmed at start-up (lifespan)
    app.include_router(overview.router)
    app.include_router(LabelsFactory().router)
    app.include_router(BasemapFactory().router)
    mount_viewer(app, viewer_settings)
    mount_docs(app)

    if isinstance(app.state.engine, RoutingEngine):  # innermost: a refused GET is retried on the primary
        app.add_middleware(ReadRoutingMiddleware, engine=app.state.engine)
    app.add_middleware(BodyLimitMiddleware, limit=api_settings.upload_limit_bytes)
    app.add_middleware(HeadMiddleware)
    if api_settings.reads_require_key:
        app.add_middleware(PrivateCacheMiddleware)
    if api_settings.cors_origins:
        app.add_middleware(
            JsonCORSMiddleware,
            allow_origins=api_settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["ETag", "Content-Crs", "Content-Range", "Content-Length", "Location"],
        )
    app.add_middleware(UrlLimitMiddleware, limit=api_settings.url_limit_bytes)
    if api_settings.access_log:
        app.add_middleware(AccessLogMiddleware)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema["paths"]["/tiles/{tileset}/{path}"] = tiles_openapi_path()
            app.openapi_schema = to_openapi30(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
