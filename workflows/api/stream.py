"""`GET /api/runs/{id}/events/stream/`: a run's events as Server-Sent Events.

An async view, served by the ASGI app: one stream holds a coroutine and a channel-layer
subscription, not a thread. It sends the stored events after `Last-Event-ID` (or `?after=`),
then the run's live events as they are broadcast (workflows/engine/broadcast.py), and ends once
the run is terminal and its last event is sent. It subscribes before it reads the stored events
and numbers nothing itself: every event is sent once, in `seq` order, whichever way it came.
Broadcasting is best effort, so a gap in the live events, or a quiet keep-alive interval, is
filled from the database.
"""

import asyncio
import json

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.http import JsonResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from config.errors import NotFound
from config.serializers import api_errors
from workflows import selectors
from workflows.engine.broadcast import run_group
from workflows.engine.events import event_message
from workflows.models import RUN_TERMINAL, Run

# What OpenAPI 3.0 documents for an event stream: one event (a frame), not the whole stream.
EVENT_FRAME = inline_serializer("RunEventFrame", {
    "id": serializers.CharField(help_text="The event's seq: send it back as Last-Event-ID."),
    "event": serializers.CharField(help_text="The event's type."),
    "data": serializers.CharField(help_text="JSON of the event's seq, type, payload and at."),
})  # fmt: skip
KEEPALIVE_S = 15.0  # under the idle timeouts of the usual proxies (nginx: 60 s)
CATCH_UP_BATCH = 1000


async def run_events_stream(request, run_id):
    opened = await sync_to_async(_open)(request, run_id)
    if isinstance(opened, JsonResponse):
        return opened
    run, after = opened
    response = StreamingHttpResponse(_events(run, after), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx would hold the events back otherwise
    return response


def _open(request, run_id) -> tuple[Run, int] | JsonResponse:
    """(the run, the seq to send the events after), or the error response: the events list's."""
    try:
        user = _authenticated_user(request)
        if user is None:
            message = "Authentication credentials were not provided."
            return _error(401, "not_authenticated", message)
        try:
            after = int(request.headers.get("Last-Event-ID") or request.GET.get("after") or 0)
            if after < 0:
                raise ValueError
        except ValueError:
            return _error(400, "invalid", "Last-Event-ID and after are a seq: an integer >= 0.")
        return selectors.run_get_visible(user=user, run_id=run_id), after
    except exceptions.AuthenticationFailed as error:
        # simplejwt's detail is {"detail", "code", "messages"}; DRF's own is a string.
        detail = error.detail if isinstance(error.detail, dict) else {"detail": error.detail}
        code = str(detail.get("code") or error.default_code)
        return _error(401, code, str(detail.get("detail", "")))
    except NotFound as error:
        return _error(404, error.code, "Not found.")
    finally:
        _release_connection()


def _release_connection() -> None:
    # A stream lives as long as its run: holding a database connection (persistent, with
    # CONN_MAX_AGE) for each open stream would cap them at the database's connections. Reads
    # are rare (the start, a gap, each keep-alive, the end); each opens its own.
    connection.close()


async def _events(run: Run, last: int):
    """The SSE frames of the run's events after seq `last`, until the run has ended."""
    layer = get_channel_layer()
    group = run_group(str(run.pk))
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    # One receive outlives the keep-alive waits: cancelling a receive drops the subscription.
    receiving = asyncio.ensure_future(layer.receive(channel))
    try:
        ended = False
        while True:
            # Stored events: at first, after a gap or a quiet interval, and once more at the end.
            ended, stored = await sync_to_async(_stored_after)(run, last)
            for event in stored:
                last = event["seq"]
                yield _frame(event)
            if ended:
                return
            while True:
                done, _ = await asyncio.wait({receiving}, timeout=KEEPALIVE_S)
                if not done:
                    yield ": keep-alive\n\n"
                    break
                message = receiving.result()
                receiving = asyncio.ensure_future(layer.receive(channel))
                live = [e for e in message.get("events", ()) if e["seq"] > last]
                if live and live[0]["seq"] != last + 1:
                    break  # some were not broadcast: read them
                for event in live:
                    last = event["seq"]
                    yield _frame(event)
                if any(_ends(event) for event in live):
                    break  # events written after the end, in the same commit, are stored
    finally:
        receiving.cancel()
        await layer.group_discard(group, channel)


def _stored_after(run: Run, after: int) -> tuple[bool, list[dict]]:
    """(whether the run has ended, its stored events after `after`). The status is read first:
    the events of the commit that ended the run are then among those read."""
    try:
        run.refresh_from_db(fields=["status"])
        ended = run.status in RUN_TERMINAL
        run_id, events = str(run.pk), []
        while True:
            rows = selectors.run_events_after(run=run, after=after, limit=CATCH_UP_BATCH)
            events += [event_message(run_id, e.seq, e.type, e.payload, e.at) for e in rows]
            if len(rows) < CATCH_UP_BATCH:
                return ended, events
            after = rows[-1].seq
    finally:
        _release_connection()


def _ends(event: dict) -> bool:
    return event["type"] == "run.status" and event["payload"].get("to") in RUN_TERMINAL


def _frame(event: dict) -> str:
    data = {key: event[key] for key in ("seq", "type", "payload", "at")}
    body = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {body}\n\n"


def _authenticated_user(request):
    """The user the API's authentication classes (JWT Bearer, session) find, or None."""
    drf_request = Request(
        request, authenticators=[auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    )
    user = drf_request.user
    return user if user.is_authenticated else None


def _error(status: int, code, message: str) -> JsonResponse:
    response = JsonResponse(
        {"error": {"code": code, "message": message, "details": {}}}, status=status
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


class RunEventsStreamView(APIView):
    """The schema of the stream; requests are served by `run_events_stream` (DRF views are
    synchronous, and a stream must not hold a thread)."""

    @extend_schema(
        summary="Stream the run's events (Server-Sent Events) until it has ended",
        description=(
            "Each event is a frame `id: <seq>`, `event: <type>`, `data: <JSON of seq, type, "
            "payload, at>`; a comment `: keep-alive` every 15 s while nothing happens. First "
            "the stored events after `Last-Event-ID` (or `after`), then the live ones; the "
            "stream ends after the event that ended the run. Reconnect with `Last-Event-ID` "
            "to resume without a gap or a duplicate."
        ),
        parameters=[
            OpenApiParameter("Last-Event-ID", OpenApiTypes.INT, OpenApiParameter.HEADER),
            OpenApiParameter(
                "after", OpenApiTypes.INT, description="Only events with a greater seq."
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(EVENT_FRAME, "One event per frame."),
            **api_errors(400, 401, 404),
        },
    )
    def get(self, request, run_id):  # pragma: no cover - the URL serves run_events_stream
        raise NotImplementedError

    @classmethod
    def as_view(cls, **initkwargs):
        """`run_events_stream`, carrying this class for drf-spectacular's endpoint discovery."""

        async def view(request, run_id):
            return await run_events_stream(request, run_id)

        view.cls = cls
        view.initkwargs = initkwargs
        view.csrf_exempt = True  # GET only; the session, if any, is checked by the authenticators
        return view
