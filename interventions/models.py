"""Interventions: tasks for a person that a run waits on (or, for a review, only records).

An intervention names its run and step run by value (the engine's rows are the engine's); the
step run waits on `wait_ref` until a resolution moves it through the engine's door.
"""

import uuid
from datetime import UTC

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone


class InterventionType(models.TextChoices):
    APPROVAL = "approval"
    INPUT = "input"
    CORRECTION = "correction"
    ESCALATION = "escalation"
    REVIEW = "review"


class Source(models.TextChoices):
    """What opened it, and so what its answer does to the step."""

    HUMAN = "human", "a human: step (its output is the resolution)"
    REVIEW = "review", "a step's review: (a correction holds the step's success)"
    ESCALATED = "escalated", "a gate's escalation or a failure under on_failure: escalate"


class Priority(models.IntegerChoices):
    LOW = 10, "low"
    NORMAL = 20, "normal"
    HIGH = 30, "high"
    URGENT = 40, "urgent"


class Status(models.TextChoices):
    OPEN = "OPEN"
    CLAIMED = "CLAIMED"
    RESOLVED = "RESOLVED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


class OnExpiry(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"
    SKIP = "skip"
    ABORT = "abort"


# The lifecycle: every status change goes through lifecycle.intervention_transition, which
# checks this table.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.OPEN: frozenset({Status.CLAIMED, Status.RESOLVED, Status.EXPIRED, Status.CANCELLED}),
    Status.CLAIMED: frozenset({Status.OPEN, Status.RESOLVED, Status.EXPIRED, Status.CANCELLED}),
    Status.RESOLVED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.CANCELLED: frozenset(),
}
ACTIVE = (Status.OPEN, Status.CLAIMED)


class Intervention(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run_id = models.UUIDField(db_index=True)
    step_run_id = models.BigIntegerField()
    step_id = models.CharField(max_length=100)
    iteration = models.PositiveIntegerField(default=0)
    workflow = models.SlugField(max_length=100)
    type = models.CharField(max_length=16, choices=InterventionType.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="interventions_assigned",
    )  # fmt: skip
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="interventions",
        help_text="The candidate group: any member may claim and resolve it.",
    )  # fmt: skip
    prompt = models.TextField(blank=True)
    context = models.JSONField(
        default=dict, blank=True,
        help_text="What the pilot needs: inputs, the outputs the step read, its input, the "
        "output proposed for correction, the escalation's message and details.",
    )  # fmt: skip
    form = models.JSONField(null=True, blank=True, help_text="JSON Schema of an input's data.")
    due_at = models.DateTimeField(null=True, blank=True)
    on_expiry = models.CharField(
        max_length=16, choices=OnExpiry.choices, blank=True,
        help_text="What its due time passing does ('': nothing; it stays open, overdue).",
    )  # fmt: skip
    warn_at = models.DateTimeField(
        null=True, blank=True, help_text="When its breach warning goes out (notifications)."
    )
    warned_at = models.DateTimeField(null=True, blank=True)
    notify = models.JSONField(
        default=dict, blank=True, help_text="Its step's `notify:` ({webhook, email})."
    )
    approvals_required = models.PositiveSmallIntegerField(default=1)
    approvals = models.JSONField(
        default=list, blank=True, help_text="[{by, at}] of the approvals so far."
    )
    wait_ref = models.CharField(
        max_length=200, blank=True, help_text="The reference the step run waits on ('' : none)."
    )
    resolution = models.JSONField(
        null=True, blank=True, help_text="{decision, data, output, comment}"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="interventions_resolved",
    )  # fmt: skip
    resolved_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="interventions_claimed",
    )  # fmt: skip
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The queue's order as one unique, sortable key: priority (urgent first), then due time
    # (none last), then age; keyset pagination needs a unique order.
    queue_key = models.CharField(max_length=100, editable=False)

    class Meta:
        ordering = ["queue_key"]
        indexes = [
            models.Index(fields=["status", "queue_key"], name="intervention_queue"),
            models.Index(
                fields=["due_at"],
                name="intervention_due",
                condition=models.Q(status__in=["OPEN", "CLAIMED"]),
            ),  # fmt: skip
            models.Index(
                fields=["warn_at"],
                name="intervention_warn",
                condition=models.Q(status__in=["OPEN", "CLAIMED"], warned_at__isnull=True),
            ),  # fmt: skip
        ]

    def __str__(self):
        return f"{self.get_type_display()} {self.workflow}/{self.step_id} ({self.status})"

    def save(self, *args, **kwargs):
        if not self.queue_key:
            self.queue_key = self.queue_key_of()
        super().save(*args, **kwargs)

    def queue_key_of(self) -> str:
        due = _sortable(self.due_at) if self.due_at else "9" * 20
        rank = max(Priority.values) - self.priority
        return f"{rank:02d}-{due}-{_sortable(self.created_at)}-{self.pk.hex}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE


def _sortable(at) -> str:
    return at.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")


class InterventionComment(models.Model):
    intervention = models.ForeignKey(
        Intervention, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self):
        return self.text[:60]


class Notification(models.Model):
    """One notification of an intervention's event on one channel: its recipients, the body
    sent (the same on every attempt), and how its delivery went."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    class Event(models.TextChoices):
        OPEN = "open"
        BREACH = "breach", "about to breach its due time"
        EXPIRE = "expire"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    # Its id is the webhook's Idempotency-Key: the same on every retry.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    intervention = models.ForeignKey(
        Intervention, on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    event = models.CharField(max_length=8, choices=Event.choices)
    to = models.TextField(help_text="The addresses (comma-separated), or the webhook's URL.")
    payload = models.JSONField(help_text="What is sent, fixed when the event happened.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(
        default=timezone.now, help_text="When its delivery was last sent to a worker, or tried."
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["intervention", "channel", "event"], name="notification_once"
            )
        ]

    def __str__(self):
        return f"{self.event} by {self.channel} to {self.to} ({self.status})"
