"""Guardians (DESIGN §5): versioned policy gates, and every decision one made about a step.

A GuardianDecision names its run and step by value, not by foreign key: runs are the engine's
rows, and this app reaches them only through the engine's door (workflows.engine.api).
"""

import uuid

from django.conf import settings
from django.db import models


class Kind(models.TextChoices):
    PASS_THRU = "PASS_THRU"
    CRITERIA_GATE = "CRITERIA_GATE"
    DIRECTIONAL_FILTER = "DIRECTIONAL_FILTER"
    TTL_CHECK = "TTL_CHECK"
    CERBERUS = "CERBERUS"
    COMPOSITE = "COMPOSITE"


class Outcome(models.TextChoices):
    ALLOW = "allow"
    BLOCK = "block"
    ROUTE = "route"
    ESCALATE = "escalate"


class OnError(models.TextChoices):
    """What a guardian that fails decides."""

    BLOCK = "block"
    ESCALATE = "escalate"
    ALLOW = "allow"


class Guardian(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    current_version = models.ForeignKey(
        "GuardianVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class GuardianVersion(models.Model):
    """Immutable: a new spec makes the next version."""

    guardian = models.ForeignKey(Guardian, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    config = models.JSONField(default=dict)
    on_error = models.CharField(max_length=16, choices=OnError.choices, default=OnError.BLOCK)
    spec = models.JSONField(help_text="The validated spec (guardians.specs.GuardianSpec).")
    checksum = models.CharField(max_length=64)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["guardian", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["guardian", "number"], name="unique_guardian_version")
        ]

    def __str__(self):
        return f"{self.guardian.slug} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("a published guardian version is immutable; publish the next one")
        super().save(*args, **kwargs)


class GuardianDecision(models.Model):
    """One evaluation of a guardian version before a step: what it decided and on what."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run_id = models.UUIDField(db_index=True)
    step_id = models.CharField(max_length=100)
    workflow = models.SlugField(max_length=100)
    guardian_version = models.ForeignKey(
        GuardianVersion, on_delete=models.PROTECT, related_name="decisions"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, help_text="The values its rules read.")
    route = models.JSONField(default=list, blank=True, help_text="The steps a route names.")
    error = models.TextField(blank=True, help_text="What the guardian raised (on_error applied).")
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["run_id", "at", "id"]

    def __str__(self):
        return f"{self.guardian_version} {self.outcome} {self.step_id}"
