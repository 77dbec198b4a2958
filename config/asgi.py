"""The ASGI app: Django's HTTP (pages, API, SSE) and the dashboard's WebSockets.

WebSockets authenticate with the session cookie and are refused from an Origin that is not one
of ALLOWED_HOSTS (a page on another site could otherwise open them with the user's cookie).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
http = get_asgi_application()  # first: it sets Django up for the imports below

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from workflows.consumers import FeedConsumer, RunEventsConsumer  # noqa: E402

websockets = [
    path("ws/runs/<uuid:run_id>/", RunEventsConsumer.as_asgi()),
    path("ws/feed/", FeedConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websockets))),
    }
)
