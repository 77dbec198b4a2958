"""Send run events to the live feed's Channels groups after commit: the run's (`run.<id>`), its
workflow's (`workflow.<id>`, for feeds limited to the workflows a user may view) and all runs'
(`runs`, for those who may view every workflow).

Broadcasting is best effort: the events are already committed, and a client that missed some
reads them from the API with `after=<seq>`. On Redis (RedisPubSubChannelLayer, where a group is
a pub/sub channel) the committing thread publishes both groups' messages in one round trip, with
a plain Redis client: no event loop and no thread, so a commit's events are on their way before
the next step starts. Other layers (the embedded in-memory one) get the layer's group_send.
"""

import logging
from functools import cache

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

logger = logging.getLogger(__name__)
RUNS_GROUP = "runs"
SEND_TIMEOUT_S = 2.0  # a Redis that does not answer holds a commit's thread no longer than this


def run_group(run_id: str) -> str:
    return f"run.{run_id}"


def workflow_group(workflow_id: int) -> str:
    return f"workflow.{workflow_id}"


def broadcast(run_id: str, workflow_id: int, events: list[dict]) -> None:
    """Send the events of one commit of the run to its group, its workflow's and all runs'."""
    layer = get_channel_layer()
    if layer is None or not events:
        return
    message = {"type": "run.events", "events": events}
    groups = (run_group(run_id), workflow_group(workflow_id), RUNS_GROUP)
    try:
        groups_send(groups, message)
    except Exception:
        logger.exception("broadcasting the events of run %s failed", run_id)


def groups_send(groups, message: dict) -> None:
    """Send `message` to each of `groups` now, from synchronous code (raises what the layer
    raises)."""
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, RedisPubSubChannelLayer):
        _publish(layer, groups, message)
    else:
        for group in groups:
            async_to_sync(layer.group_send)(group, message)


def _publish(layer: RedisPubSubChannelLayer, groups, message: dict) -> None:
    """What the layer's group_send does (PUBLISH to the group's channel, serialized as the
    layer serializes), for every group in one pipeline."""
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    prefix = config.get("prefix", "asgi")
    payload = layer.serialize(message)
    pipeline = _redis(redis_url(config["hosts"][0])).pipeline(transaction=False)
    for group in groups:
        pipeline.publish(f"{prefix}__group__{group}", payload)
    pipeline.execute()


def redis_url(host) -> str:
    """The URL of a channels-redis host, which its CONFIG may give as a URL or as a dict."""
    return host if isinstance(host, str) else host["address"]


@cache
def _redis(url: str) -> redis.Redis:
    # redis-py's pool reconnects in a forked child rather than share the parent's sockets.
    return redis.Redis.from_url(url, socket_timeout=SEND_TIMEOUT_S)
