"""The dashboard's live feeds: WebSockets that pass on the run events the engine broadcasts.

- `/ws/runs/<id>/`: one run's events (the run page, an intervention's page), for a user who may
  view that run.
- `/ws/feed/`: the events of every run the user may view (the queue, the runs list, the
  overview): the group of all runs for those who may view every workflow, otherwise one group per
  workflow they may view.

A connection without a signed-in session, or for a run the user may not view, is refused before
it is accepted; a foreign Origin is refused by config.asgi. Consumers only read: they check
permissions and join groups, and pages render from the database when told something changed,
so a page that reconnects catches up by reloading its live parts.

What a socket may receive is decided at its handshake, and the socket closes as soon as that
decision may have changed: at its session's expiry, and when workflows.live_access closes its
user's sockets (signing out, a session deleted, deactivation, a new password, any change of
their permissions or groups). The page reconnects and the handshake decides again.

On Redis, sockets are closed when the layer's Redis stops answering or restarts: the layer
subscribes again by itself, but what was published in between is lost, and only a page that
reconnects knows to reload. One check a second per process (`INFO server`) serves all its
sockets.
"""

import asyncio
import weakref

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.errors import NotFound
from workflows import selectors
from workflows.engine.broadcast import RUNS_GROUP, redis_url, run_group, workflow_group
from workflows.live_access import user_group

LAYER_CHECK_S = 1.0


class _EventsConsumer(AsyncJsonWebsocketConsumer):
    _watch: "_LayerWatch | None" = None
    _expiry: asyncio.Task | None = None

    async def connect(self):
        user = self.scope.get("user")
        if not (user and user.is_authenticated):
            await _connection_release()  # looking the session up may have taken one
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        if isinstance(self.channel_layer, RedisPubSubChannelLayer):
            self._watch = _LayerWatch.of_this_loop()
            # Before subscribing, so no restart can fall in between; a Redis that does not
            # answer refuses the socket, and the page tries again.
            if not await self._watch.join(self):
                await self.close()
                return
        # The user's group first: a change of access during the check below closes it.
        await self._join(user_group(user.pk))
        access = await _access_for(user, self)
        if access is None:
            await self.close()
            return
        groups, expires_in = access
        for group in groups:
            await self._join(group)
        await self.accept()
        self._expiry = asyncio.create_task(self._close_after(expires_in))

    async def _join(self, group: str) -> None:
        self.groups.append(group)  # left on disconnect by Channels
        await self.channel_layer.group_add(group, self.channel_name)

    async def _close_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.close()

    async def disconnect(self, code):
        if self._watch:
            self._watch.leave(self)
        if self._expiry:
            self._expiry.cancel()

    async def receive_json(self, content, **kwargs):
        pass  # a feed only speaks

    async def run_events(self, message):
        await self.send_json({"events": message["events"]})

    async def user_close(self, message):
        await self.close()

    def allowed_groups(self, user) -> list[str] | None:
        """The groups `user` may listen to here; None refuses the connection."""
        return None


class RunEventsConsumer(_EventsConsumer):
    def allowed_groups(self, user) -> list[str] | None:
        run_id = self.scope["url_route"]["kwargs"]["run_id"]
        try:
            selectors.run_get_visible(user=user, run_id=run_id)
        except NotFound:
            return None
        return [run_group(str(run_id))]


class FeedConsumer(_EventsConsumer):
    def allowed_groups(self, user) -> list[str]:
        if selectors.workflows_all_visible_to(user):
            return [RUNS_GROUP]
        ids = selectors.workflows_visible_to(user).values_list("pk", flat=True)
        # A user who may view no workflow still gets a feed: it stays silent.
        return [workflow_group(pk) for pk in ids]


class _LayerWatch:
    """Closes this event loop's sockets when the channel layer's Redis has gone away or come
    back as a new server (its run_id changed), either of which may have lost messages. It
    checks while it has sockets, and notes the server again when the next one joins: one
    watcher at a time, however many sockets join at once."""

    _of_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LayerWatch]" = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def of_this_loop(cls) -> "_LayerWatch":
        loop = asyncio.get_running_loop()
        if loop not in cls._of_loop:
            cls._of_loop[loop] = cls()
        return cls._of_loop[loop]

    def __init__(self):
        url = redis_url(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0])
        self.client = aioredis.Redis.from_url(url, socket_timeout=LAYER_CHECK_S)
        self.server: str | None = None
        self.sockets: set[_EventsConsumer] = set()
        self.watcher: asyncio.Task | None = None  # held: the loop keeps only a weak reference
        self._noting = asyncio.Lock()

    async def join(self, socket: _EventsConsumer) -> bool:
        """Watch `socket`; False if no Redis answers."""
        async with self._noting:  # sockets joining together note the server and start once
            if self.server is None:
                try:
                    self.server = await self._server()
                except aioredis.RedisError:
                    return False
                self.watcher = asyncio.create_task(self._watch())
        self.sockets.add(socket)
        return True

    def leave(self, socket: _EventsConsumer) -> None:
        self.sockets.discard(socket)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(LAYER_CHECK_S)
            try:
                lost = await self._server() != self.server
            except aioredis.RedisError:
                lost = True
            if lost or not self.sockets:
                self.server = None  # the next socket to join notes the server afresh
                closing, self.sockets = self.sockets, set()
                for socket in closing:
                    await socket.close()
                return

    async def _server(self) -> str:
        return (await self.client.info("server"))["run_id"]


@database_sync_to_async
def _access_for(user, consumer: _EventsConsumer) -> tuple[list[str], float] | None:
    """The groups `user` may listen to on `consumer` and the seconds until the session expires,
    or None to refuse."""
    try:
        groups = consumer.allowed_groups(user)
        expiry = consumer.scope["session"].get_expiry_date()
        return None if groups is None else (groups, (expiry - timezone.now()).total_seconds())
    finally:
        connection.close()  # a feed lives long: it holds no database connection meanwhile


@database_sync_to_async
def _connection_release() -> None:
    connection.close()
