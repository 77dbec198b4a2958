"""Celery tasks: take ids, call one service. Redelivery is expected and harmless."""

from celery import shared_task

from interventions import expiry, notifications


@shared_task(name="interventions.sweep")
def sweep() -> int:
    """Beat's: expire the interventions past due, warn of those about to be, resend lost
    notifications."""
    return (
        expiry.interventions_expire_due()
        + notifications.interventions_warn_due()
        + notifications.notifications_resend_stale()
    )


@shared_task(name="interventions.notify", bind=True, max_retries=notifications.ATTEMPTS)
def notify(self, notification_id: str) -> None:
    """Deliver one notification; a failed attempt is tried again after the backoff it says."""
    retry_in = notifications.notification_deliver(notification_id=notification_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)
