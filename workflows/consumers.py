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
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import connection

from config.errors import NotFound
from workflows import selectors
from workflows.engine.broadcast import RUNS_GROUP, run_group, workflow_group


class _EventsConsumer(AsyncJsonWebsocketConsumer):
    groups: list[str]

    async def connect(self):
        user = self.scope.get("user")
        groups = await _groups_for(user, self) if user and user.is_authenticated else None
        if not groups:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        self.groups = groups  # left on disconnect by Channels
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

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


@database_sync_to_async
def _groups_for(user, consumer: _EventsConsumer) -> list[str]:
    try:
        return consumer.allowed_groups(user)
    finally:
        connection.close()  # a feed lives long: it holds no database connection meanwhile
