"""Notifications of an intervention's opening, coming breach and expiry: email to its assignee or
its group's members, a webhook where the step says, each a recorded Notification. Deliveries run
in this process here; tests/interventions/test_notify_live.py has a worker deliver and retry."""

from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from config.errors import InvalidInput
from interventions.expiry import interventions_expire_due
from interventions.models import Intervention, Notification
from interventions.notifications import (
    interventions_warn_due,
    notification_deliver,
    notifications_resend_stale,
    warn_at,
)
from tests.interventions.conftest import waiting_on
from tests.interventions.test_flows import APPROVAL
from workflows.models import Run, Workflow

pytestmark = pytest.mark.django_db

ASSIGNED = """
slug: assigned
steps:
  - id: ask
    human: {type: approval, prompt: "Sign?", assignee: ASSIGNEE, due_in: 1h, on_expiry: reject}
"""


def deliver_pending() -> list[Notification]:
    """Deliver what is pending, as the worker's task would (once each; no retries)."""
    for notification in Notification.objects.filter(status=Notification.Status.PENDING):
        notification_deliver(notification_id=notification.pk)
    return list(Notification.objects.order_by("created_at", "channel"))


def test_an_opened_intervention_emails_its_assignee(start, drain, make_user, mailoutbox):
    assignee = make_user()
    assignee.email = "ada@example.com"
    assignee.save()
    run = start(ASSIGNED.replace("ASSIGNEE", assignee.username))
    assign_perm("view_workflow", assignee, Workflow.objects.get(slug="assigned"))
    drain()

    [notification] = deliver_pending()

    intervention = waiting_on(run)
    assert (notification.intervention, notification.channel, notification.event) == (
        intervention, "email", "open",
    )  # fmt: skip
    assert (notification.status, notification.attempts, notification.to) == (
        "sent", 1, "ada@example.com",
    )  # fmt: skip
    assert notification.sent_at is not None
    [mail] = mailoutbox
    assert mail.to == ["ada@example.com"] and "approval waiting for you" in mail.subject
    assert "Sign?" in mail.body and f"/api/interventions/{intervention.pk}/" in mail.body


def test_without_an_assignee_the_group_s_members_with_an_email_are_mailed(
    start, drain, pilot, make_user, legal, mailoutbox
):
    pilot.email = "pilot@example.com"
    pilot.save()
    make_user().groups.add(legal)  # no email: not mailed
    other = make_user(username="grace")
    other.email = "grace@example.com"
    other.save()
    other.groups.add(legal)
    outsider = make_user(username="eve")  # in the group, but may not see the workflow's runs
    outsider.email = "eve@example.com"
    outsider.save()
    outsider.groups.add(legal)
    run = start(APPROVAL)
    assign_perm(
        "view_workflow", other, Workflow.objects.get(pk=Run.objects.get(pk=run.pk).workflow_id)
    )
    drain()

    [notification] = deliver_pending()

    assert notification.to == "grace@example.com, pilot@example.com"
    assert sorted(mail.to[0] for mail in mailoutbox) == ["grace@example.com", "pilot@example.com"]


def test_nobody_to_mail_and_no_webhook_records_nothing(start, drain):
    start(APPROVAL)  # the legal group's pilot has no email
    drain()

    assert not Notification.objects.exists()


def test_the_breach_warning_goes_out_once(start, drain, pilot, mailoutbox):
    pilot.email = "pilot@example.com"
    pilot.save()
    run = start(APPROVAL)
    drain()
    deliver_pending()
    intervention = waiting_on(run)
    assert intervention.warn_at == intervention.due_at - timedelta(minutes=10)
    assert interventions_warn_due() == 0  # not yet
    Intervention.objects.filter(pk=intervention.pk).update(warn_at=timezone.now())

    assert interventions_warn_due() == 1
    assert interventions_warn_due() == 0

    deliver_pending()
    breach = Notification.objects.get(event="breach")
    assert (breach.channel, breach.status) == ("email", "sent")
    assert "approval due soon" in mailoutbox[-1].subject and len(mailoutbox) == 2


def test_an_expiry_is_notified(start, drain, pilot, mailoutbox):
    pilot.email = "pilot@example.com"
    pilot.save()
    run = start(APPROVAL)
    drain()
    Intervention.objects.filter(run_id=run.pk).update(due_at=timezone.now())

    interventions_expire_due()
    deliver_pending()

    expired = Notification.objects.get(event="expire")
    assert expired.status == "sent" and expired.payload["status"] == "EXPIRED"
    assert "approval expired unanswered" in mailoutbox[-1].subject


def test_the_breach_warning_of_a_short_task_comes_once_80_percent_of_its_time_passed():
    now = timezone.now()

    assert warn_at(now, now + timedelta(minutes=2)) == now + timedelta(seconds=96)
    assert warn_at(now, now + timedelta(hours=4)) == now + timedelta(hours=4, minutes=-10)
    assert warn_at(now, None) is None


def _webhooked(url: str, *, email: bool = True) -> str:
    notify = f"{{webhook: '{url}'}}" if email else f"{{webhook: '{url}', email: false}}"
    return APPROVAL.replace("on_expiry: reject}", f"on_expiry: reject}}\n    notify: {notify}")


def test_a_webhook_the_tools_may_not_call_fails_at_once_and_says_why(start, drain):
    start(_webhooked("http://10.1.2.3/hook"))
    drain()

    [notification] = deliver_pending()

    assert (notification.channel, notification.status, notification.attempts) == (
        "webhook", "failed", 1,
    )  # fmt: skip
    assert "private address" in notification.error


def test_a_webhook_whose_host_does_not_resolve_is_retried_with_backoff_then_failed(start, drain):
    start(_webhooked("http://nonexistent.invalid/hook"))
    drain()

    [notification] = deliver_pending()

    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "cannot resolve nonexistent.invalid" in notification.error
    retries = [notification_deliver(notification_id=notification.pk) for _ in range(4)]

    assert retries == [2.0, 4.0, 8.0, None]  # the backoffs, then no more: it failed for good
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 5)


def test_a_webhook_answering_4xx_is_not_retried(start, drain, http_server):
    base_url, recorder = http_server
    recorder.status = 404
    start(_webhooked(f"{base_url}/hook"))
    drain()

    [notification] = deliver_pending()

    assert (notification.status, notification.error) == ("failed", "Refused: HTTP 404")


def test_email_false_sends_the_webhook_only(start, drain, pilot, http_server, mailoutbox):
    pilot.email = "pilot@example.com"
    pilot.save()
    base_url, recorder = http_server
    start(_webhooked(f"{base_url}/hook", email=False))
    drain()

    [notification] = deliver_pending()

    assert notification.channel == "webhook" and notification.status == "sent"
    assert mailoutbox == [] and recorder.count("/hook") == 1


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "not a url", "https://"])
def test_a_webhook_that_is_not_an_http_url_is_refused_at_publish(make_workflow, url):
    with pytest.raises(InvalidInput) as refused:
        make_workflow(_webhooked(url))

    assert "steps[0].notify.webhook" in refused.value.details


def test_a_notification_whose_delivery_was_lost_is_sent_again(
    start, drain, pilot, django_capture_on_commit_callbacks
):
    pilot.email = "pilot@example.com"
    pilot.save()
    start(APPROVAL)
    drain()  # its task is never run here: as if lost with the broker's contents
    notification = Notification.objects.get()
    assert notifications_resend_stale() == 0  # not yet

    Notification.objects.update(dispatched_at=timezone.now() - timedelta(minutes=6))
    with django_capture_on_commit_callbacks() as dispatched:
        assert notifications_resend_stale() == 1

    assert len(dispatched) == 1 and notifications_resend_stale() == 0
    notification.refresh_from_db()
    assert notification.status == "pending"
    assert notification.dispatched_at > timezone.now() - timedelta(seconds=5)
