"""The dashboard's live feeds: WebSockets that pass on the run events the engine broadcasts.

- `/ws/runs/<id>/`: one run's events (the run page, an intervention's page), for a user who may
  view that run.
- `/ws/feed/`: the events of every run the user may view (the queue, the runs list, the
  overview): the group of all runs for those who may view every workflow, otherwise one group per
  workflow they may view, as it stood when they connected.

A connection without a signed-in session, or for a run the user may not view, is refused before
it is accepted; a foreign Origin is refused by config.asgi. Consumers only read: they check
permissions and join groups, and pages render from the database when told something changed,
so a page that reconnects catches up by reloading its live parts.

On Redis, a socket is closed when the layer's Redis stops answering or restarts: the layer
subscribes again by itself, but what was published in between is lost, and only a page that
reconnects knows to reload. The check is one `INFO server` a second per socket.
"""

import asyncio

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import connection

from config.errors import NotFound
from workflows import selectors
from workflows.engine.broadcast import RUNS_GROUP, run_group, workflow_group

LAYER_CHECK_S = 1.0


class _EventsConsumer(AsyncJsonWebsocketConsumer):
    groups: list[str]
    _watch: asyncio.Task | None = None

    async def connect(self):
        user = self.scope.get("user")
        groups = await _groups_for(user, self) if user and user.is_authenticated else None
        if not groups:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        watch = _LayerWatch() if isinstance(self.channel_layer, RedisPubSubChannelLayer) else None
        # Before subscribing, so no restart can fall in between; a Redis that does not answer
        # refuses the socket, and the page tries again.
        if watch and not await watch.started():
            await self.close()
            return
        self.groups = groups  # left on disconnect by Channels
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        if watch:
            self._watch = asyncio.ensure_future(self._close_when_lost(watch))

    async def disconnect(self, code):
        if self._watch:
            self._watch.cancel()

    async def _close_when_lost(self, watch: "_LayerWatch") -> None:
        try:
            await watch.until_lost()
        finally:
            await watch.client.aclose()
        await self.close()

    async def receive_json(self, content, **kwargs):
        pass  # a feed only speaks

    async def run_events(self, message):
        await self.send_json({"events": message["events"]})

    def allowed_groups(self, user) -> list[str]:
        """The groups `user` may listen to here; none refuses the connection."""
        return []


class RunEventsConsumer(_EventsConsumer):
    def allowed_groups(self, user) -> list[str]:
        run_id = self.scope["url_route"]["kwargs"]["run_id"]
        try:
            selectors.run_get_visible(user=user, run_id=run_id)
        except NotFound:
            return []
        return [run_group(str(run_id))]


class FeedConsumer(_EventsConsumer):
    def allowed_groups(self, user) -> list[str]:
        if selectors.workflows_all_visible_to(user):
            return [RUNS_GROUP]
        ids = selectors.workflows_visible_to(user).values_list("pk", flat=True)
        # A user who may view no workflow still gets a feed: it stays silent.
        return [workflow_group(pk) for pk in ids] or [f"user.{user.pk}"]


class _LayerWatch:
    """Tells when the channel layer's Redis has gone away or come back as a new server (its
    run_id changed), either of which may have lost messages."""

    def __init__(self):
        url = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
        self.client = aioredis.Redis.from_url(url, socket_timeout=LAYER_CHECK_S)
        self.server = None

    async def started(self) -> bool:
        """Note the server now answering; False (and the client closed) if none does."""
        try:
            self.server = await self._server()
            return True
        except aioredis.RedisError:
            await self.client.aclose()
            return False

    async def until_lost(self) -> None:
        while True:
            await asyncio.sleep(LAYER_CHECK_S)
            try:
                if await self._server() != self.server:
                    return
            except aioredis.RedisError:
                return

    async def _server(self) -> str:
        return (await self.client.info("server"))["run_id"]


@database_sync_to_async
def _groups_for(user, consumer: _EventsConsumer) -> list[str]:
    try:
        return consumer.allowed_groups(user)
    finally:
        connection.close()  # a feed lives long: it holds no database connection meanwhile
