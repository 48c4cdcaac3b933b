"""The nginx front of ``cim serve --front nginx``: nginx serves the tile files, the app everything else.

``config.py`` writes the private ``nginx.conf`` from the service settings (same headers as the app's tile
server: ETag, Last-Modified, Cache-Control, CORS, byte ranges, gzip, key checks through ``auth_request``);
``nginx.py`` starts and stops that nginx under the data directory, like the private PostgreSQL cluster.
"""

from cim.front.config import FrontConfig, render_nginx_conf
from cim.front.nginx import FrontState, NginxFront

__all__ = ["FrontConfig", "FrontState", "NginxFront", "render_nginx_conf"]
