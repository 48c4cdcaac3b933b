"""The private ``nginx.conf`` of the front: tile files served by nginx with the app's headers, the rest proxied.

What nginx answers for a tile file is what :class:`cim.api.tiles.TileFiles` answers: the same ETag
(nginx's ``"<mtime hex>-<size hex>"``, which the app uses too; weak when gzipped), Last-Modified,
``Cache-Control`` (``public`` or, when reads need a key, ``private`` with ``Vary`` on the credential
headers), ``Accept-Ranges`` and single byte ranges, gzip of JSON and terrain above 256 bytes, and the same
CORS headers for the same origins. Everything nginx does not answer itself goes to the app: the API, other
methods than GET/HEAD (the app's 405 and CORS preflights), files that are not on disk (the app's JSON 404,
tilesets published to object storage). With ``reads_require_key`` every tile GET is first checked by the
app through ``auth_request`` (``/tiles/.front-auth``); a refusal is written by nginx with the app's status,
body and headers. Key checks are not cached, so a revoked key is refused on its next request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cim.api.tiles import CONTENT_TYPES, CORS_EXPOSE, FRONT_AUTH, GZIP_TYPES
from cim.errors import ConfigError

_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[A-Za-z0-9.\-\[\]:]+$")
_USER = re.compile(r"^[a-z_][a-z0-9_\-]{0,31}$")
TILESET_LOCATION = r"^/tiles/[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}/."
"""Paths nginx serves from disk (``<tileset>/<file>``, tileset names as the app accepts them)."""


@dataclass(frozen=True)
class FrontConfig:
    """Everything the generated ``nginx.conf`` depends on."""

    prefix: Path
    """The front's private folder (config, pid file, logs, temporary files)."""
    data_path: Path
    """The data directory; tiles are ``data_path/tiles/<tileset>/…``."""
    host: str
    port: int
    app_port: int
    """The app's loopback port (``127.0.0.1``)."""
    workers: int = 1
    cors_origins: list[str] = field(default_factory=lambda: ["*"])
    reads_require_key: bool = False
    max_age: int = 3600
    access_log: bool = True
    user: str | None = None
    """Worker user (only when nginx is started as root)."""

    def check(self) -> None:
        """Refuse values that cannot go into the config as they are (a clear error, nothing written)."""
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"nginx workers must be 1–64, not {self.workers}")
        for origin in self.cors_origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ConfigError(
                    f"CORS origin {origin!r} cannot be put in the nginx front's config; origins look like "
                    "https://viewer.example.gov or https://host:8443"
                )
        if self.user is not None and not _USER.match(self.user):
            raise ConfigError(f"invalid nginx worker user name {self.user!r}")
        if not re.fullmatch(r"[0-9A-Za-z.:\[\]\-]+", self.host):
            raise ConfigError(f"invalid listen address {self.host!r}")
        for path in (self.prefix, self.data_path):
            if any(c in str(path) for c in " ;{}\"'\\$\n"):
                raise ConfigError(f"{path} has characters nginx configs cannot hold; use a plainer path")


def _types() -> str:
    by_type: dict[str, list[str]] = {}
    for ext, ctype in CONTENT_TYPES.items():
        by_type.setdefault(ctype, []).append(ext.lstrip("."))
    return "\n".join(f"        {ctype} {' '.join(exts)};" for ctype, exts in sorted(by_type.items()))


def _cors_maps(origins: list[str]) -> str:
    if not origins:
        origin_map = '    default "";'
    elif "*" in origins:
        origin_map = '    default "*";\n    "" "";'
    else:
        origin_map = '    default "";\n' + "\n".join(f'    "{o}" $http_origin;' for o in origins)
    return f"""    map $http_origin $cim_cors_origin {{
{origin_map}
    }}
    map $cim_cors_origin $cim_cors_expose {{
        default "{CORS_EXPOSE}";
        "" "";
    }}
    map $cim_cors_origin $cim_cors_vary {{
        default "Origin";
        "" "";
        "*" "";
    }}"""


_PROXY = """            proxy_pass http://cim_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;"""


def _error_body(title: str) -> str:
    """The app's JSON error body (``cim.api.tiles._json_error``) with nginx's ``$cim_auth_detail`` as detail."""
    code = title.lower().replace(" ", "-")
    return f'{{"code": "{code}", "title": "{title}", "detail": "$cim_auth_detail"}}'


def render_nginx_conf(config: FrontConfig) -> str:
    """The text of the front's ``nginx.conf`` (checked first: :class:`ConfigError` on unusable values)."""
    config.check()
    prefix = config.prefix
    cache = "private" if config.reads_require_key else "public"
    gzip_types = " ".join(sorted(GZIP_TYPES))
    user = f"user {config.user};\n" if config.user else ""
    credentials_vary = (
        '                add_header Vary "X-API-Key, Authorization";\n' if config.reads_require_key else ""
    )
    access_log = (
        f"    access_log {prefix}/access.log cim_json buffer=64k flush=1s;"
        if config.access_log
        else "    access_log off;"
    )
    auth = ""
    auth_location = ""
    challenge_map = ""
    if config.reads_require_key:
        challenge_map = """    map $cim_auth_status $cim_auth_challenge {
        default "";
        "401" 'ApiKey header="X-API-Key"';
    }
"""
        auth = f"""                auth_request /tiles/{FRONT_AUTH};
                auth_request_set $cim_auth_status $upstream_http_x_cim_status;
                auth_request_set $cim_auth_detail $upstream_http_x_cim_detail;
                auth_request_set $cim_auth_retry $upstream_http_retry_after;
                error_page 401 = @cim_refused;
"""
        auth_location = f"""
        location = /tiles/{FRONT_AUTH} {{
            internal;
{_PROXY}
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}

        location @cim_refused {{
            types {{ }}
            default_type application/json;
            add_header WWW-Authenticate $cim_auth_challenge always;
            add_header Retry-After $cim_auth_retry always;
            if ($cim_auth_status = "429") {{
                return 429 '{_error_body("Too Many Requests")}';
            }}
            return 401 '{_error_body("Unauthorized")}';
        }}
"""
    return f"""# Written by the CIM platform (cim serve --front nginx); regenerated on every start, do not edit.
{user}worker_processes {config.workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    types {{
{_types()}
    }}
    default_type application/octet-stream;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000;
    keepalive_timeout 75s;
    open_file_cache max=100000 inactive=60s;
    open_file_cache_valid 1s;
    open_file_cache_errors on;
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    log_format cim_json escape=json '{{"time": "$time_iso8601", "method": "$request_method", "path": "$uri", '
        '"status": $status, "bytes": $body_bytes_sent, "duration_ms": $request_time, "client": "$remote_addr", '
        '"upstream": "$upstream_addr"}}';
{access_log}
    # the app enforces its own body and URL limits with JSON errors: nginx lets them through
    client_max_body_size 0;
    large_client_header_buffers 4 64k;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_read_timeout 3600s;

{_cors_maps(config.cors_origins)}
{challenge_map}
    upstream cim_app {{
        server 127.0.0.1:{config.app_port};
        keepalive 64;
    }}

    server {{
        listen {config.host}:{config.port};

        location / {{
{_PROXY}
        }}

        location @cim_app {{
{_PROXY}
        }}

        location /tiles/ {{
{_PROXY}

            location ~ "{TILESET_LOCATION}" {{
                root {config.data_path};
                disable_symlinks on from=$document_root;
                if ($request_method !~ ^(GET|HEAD)$) {{
                    return 418;
                }}
                error_page 418 = @cim_app;
{auth}                try_files $uri @cim_app;
                etag on;
                charset utf-8;
                charset_types application/json;
                gzip on;
                gzip_types {gzip_types};
                gzip_min_length 257;
                gzip_comp_level 6;
                gzip_vary on;
                add_header Cache-Control "{cache}, max-age={config.max_age}";
{credentials_vary}                add_header Access-Control-Allow-Origin $cim_cors_origin;
                add_header Access-Control-Expose-Headers $cim_cors_expose;
                add_header Vary $cim_cors_vary;
            }}
        }}
{auth_location}    }}
}}
"""
