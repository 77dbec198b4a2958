"""Notifications of an intervention's opening, coming breach of its due time, and expiry: an
email to its assignee (else its candidate group's members) and, when its step says
`notify: {webhook: url}`, a POST to that URL.

Each is a Notification row written in the transaction of the event (so none is lost to a crash
in between), with the body it sends, and delivered after commit by a Celery task
(interventions.notify), which retries a failure with backoff up to ATTEMPTS times; one still
pending RESEND_AFTER after its last try (its task lost with the broker's contents, its worker
killed between retries) is sent to a worker again by the sweep. The row's id is the webhook's
Idempotency-Key, so a receiver can drop a delivery it already had (a retry after a lost
response, a task's redelivery, a resend).
"""

import logging
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from interventions.models import ACTIVE, Intervention, Notification
from workflows.engine import api

logger = logging.getLogger(__name__)
ATTEMPTS = 5  # deliveries of one notification, 1 s, 2 s, 4 s, 8 s apart
BATCH = 200
TIMEOUT_S = 10
# Longer than a delivery's retries take (1 + 2 + 4 + 8 s apart, each up to TIMEOUT_S).
RESEND_AFTER = timedelta(minutes=5)
HEADLINES = {"open": "waiting for you", "breach": "due soon", "expire": "expired unanswered"}


def warn_at(created_at, due_at):
    """When the breach warning goes out: INTERVENTIONS_BREACH_LEAD_S before the due time, or
    once 80% of the time to it has passed if that is later (a short task is not warned at once)."""
    if due_at is None:
        return None
    lead = timedelta(seconds=settings.INTERVENTIONS_BREACH_LEAD_S)
    return due_at - min(lead, (due_at - created_at) * 0.2)


def notifications_record(intervention: Intervention, *, event: str) -> None:
    """Write the event's notifications, delivered once the caller's transaction commits."""
    assert connection.in_atomic_block, "in the transaction of the event"
    payload = _payload(intervention, event)
    rows = []
    emails = _recipients(intervention) if intervention.notify.get("email", True) else []
    if emails:
        rows.append(Notification(channel=Notification.Channel.EMAIL, to=", ".join(emails)))
    if intervention.notify.get("webhook"):
        rows.append(Notification(channel=Notification.Channel.WEBHOOK,
                                 to=intervention.notify["webhook"]))  # fmt: skip
    for row in rows:
        row.intervention, row.event, row.payload = intervention, event, payload
    Notification.objects.bulk_create(rows)
    _dispatch_on_commit([row.pk for row in rows])


def _dispatch_on_commit(ids: list) -> None:
    from interventions.tasks import notify  # the tasks import this module

    if ids:
        transaction.on_commit(lambda: [notify.delay(str(pk)) for pk in ids])


def notifications_resend_stale() -> int:
    """Send again to a worker the pending notifications untried for RESEND_AFTER; return how
    many."""
    now = timezone.now()
    with transaction.atomic():
        stale = Notification.objects.select_for_update(skip_locked=True).filter(
            status=Notification.Status.PENDING, dispatched_at__lt=now - RESEND_AFTER
        )
        ids = list(stale.values_list("pk", flat=True)[:BATCH])
        Notification.objects.filter(pk__in=ids).update(dispatched_at=now)
        _dispatch_on_commit(ids)
    return len(ids)


def interventions_warn_due() -> int:
    """Send the breach warnings due (once per intervention); return how many were due."""
    with transaction.atomic():
        due = list(
            Intervention.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("assignee", "group")
            .filter(status__in=ACTIVE, warned_at__isnull=True, warn_at__lte=timezone.now())
            .order_by("warn_at")[:BATCH]
        )
        for intervention in due:
            intervention.warned_at = timezone.now()
            intervention.save(update_fields=["warned_at"])
            notifications_record(intervention, event=Notification.Event.BREACH)
    return len(due)


def notification_deliver(*, notification_id) -> float | None:
    """Make one delivery attempt of a pending notification and record it; return the seconds
    to wait before the next attempt, or None when there is none (sent, failed for good, or
    not pending: a redelivered task)."""
    notification = Notification.objects.filter(
        pk=notification_id, status=Notification.Status.PENDING
    ).first()
    if notification is None:
        return None
    Notification.objects.filter(pk=notification.pk).update(dispatched_at=timezone.now())
    try:
        if notification.channel == Notification.Channel.EMAIL:
            _email(notification)
        else:
            _post(notification)
    except Exception as exc:
        return _failed(notification, exc)
    Notification.objects.filter(pk=notification.pk).update(
        status=Notification.Status.SENT, attempts=F("attempts") + 1, error="",
        sent_at=timezone.now(),
    )  # fmt: skip
    return None


class Refused(Exception):
    """A delivery that would fail again: a refused URL, a 4xx answer."""


def _failed(notification: Notification, exc: Exception) -> float | None:
    attempts = notification.attempts + 1
    final = isinstance(exc, Refused) or attempts >= ATTEMPTS
    status = Notification.Status.FAILED if final else Notification.Status.PENDING
    Notification.objects.filter(pk=notification.pk).update(
        status=status, attempts=attempts, error=f"{type(exc).__name__}: {exc}"[:2000]
    )
    logger.warning("notification %s attempt %d failed: %s", notification.pk, attempts, exc)
    return None if final else float(2 ** (attempts - 1))


def _email(notification: Notification) -> None:
    body = notification.payload
    subject = (f"[Chameleon] {body['type']} {HEADLINES[notification.event]}: "
               f"{body['workflow']} / {body['step']}")  # fmt: skip
    lines = [body["prompt"] or "(no prompt)", "", f"Priority: {body['priority']}",
             f"Due: {body['due_at'] or 'no due time'}", f"Status: {body['status']}",
             f"Run: {body['run']}", f"Open it: {body['link']}"]  # fmt: skip
    text = "\n".join(lines)
    messages = [(subject, text, None, [address]) for address in notification.to.split(", ")]
    send_mass_mail(messages, fail_silently=False)


def _post(notification: Notification) -> None:
    try:
        api.destination_check(notification.to)
    except api.Fail as exc:
        if exc.retryable:  # its host could not be resolved: perhaps in a moment
            raise
        raise Refused(exc.message) from None
    response = httpx.post(
        notification.to, json=notification.payload, timeout=TIMEOUT_S, follow_redirects=False,
        headers={"Idempotency-Key": str(notification.pk)},
    )  # fmt: skip
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request,
                                    response=response)  # fmt: skip
    if not response.is_success:
        raise Refused(f"HTTP {response.status_code}")


def _recipients(intervention: Intervention) -> list[str]:
    """The assignee, else the candidate group's members: only those with an email who may
    see the run (a notification says what the intervention says)."""
    if intervention.assignee is not None:
        people = [intervention.assignee]
    elif intervention.group is not None:
        people = intervention.group.user_set.filter(is_active=True)
    else:
        return []
    return sorted({
        person.email for person in people
        if person.email and person.is_active
        and api.runs_visible(person).filter(pk=intervention.run_id).exists()
    })  # fmt: skip


def _payload(intervention: Intervention, event: str) -> dict:
    return {
        "id": str(intervention.pk), "event": event, "type": intervention.type,
        "status": intervention.status, "priority": intervention.get_priority_display(),
        "run": str(intervention.run_id), "workflow": intervention.workflow,
        "step": intervention.step_id, "prompt": intervention.prompt,
        "due_at": intervention.due_at and intervention.due_at.isoformat(),
        "link": f"{settings.PUBLIC_URL.rstrip('/')}/api/interventions/{intervention.pk}/",
    }  # fmt: skip
