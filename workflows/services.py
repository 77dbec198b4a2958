"""Writes on workflows: create, publish versions, pause, grant. Runs live in workflows.engine."""

import yaml
from django.db import IntegrityError, transaction
from guardian.shortcuts import assign_perm

from accounts.audit import audit_record
from config.errors import Conflict, InvalidInput
from workflows.models import Workflow, WorkflowVersion
from workflows.spec import spec_checksum, spec_parse

WORKFLOW_PERMISSIONS = ("view_workflow", "run_workflow", "change_workflow")


@transaction.atomic
def workflow_create(*, source, created_by) -> Workflow:
    """Create a workflow and its version 1 from a YAML/JSON spec; the creator gets all rights."""
    spec, canonical = spec_parse(source, author=created_by)
    # Slugs are global names: taken is taken, whoever holds it, so the answer is the same
    # whether the caller may see that workflow or not, and names nobody.
    conflict = Conflict(f"A workflow '{spec.slug}' already exists.", code="exists",
                        details={"slug": "already exists"})  # fmt: skip
    if Workflow.objects.filter(slug=spec.slug).exists():
        raise conflict
    try:
        with transaction.atomic():
            workflow = Workflow.objects.create(
                slug=spec.slug,
                name=spec.name or spec.slug,
                description=spec.description,
                owner=created_by,
            )
    except IntegrityError:
        raise conflict from None
    version = _version_add(workflow, source, canonical, created_by)
    audit_record(actor=created_by, action="workflow.publish", obj=workflow,
                 after={"version": 1, "checksum": version.checksum})  # fmt: skip
    for permission in WORKFLOW_PERMISSIONS:
        assign_perm(permission, created_by, workflow)
    return workflow


@transaction.atomic
def workflow_version_publish(*, workflow: Workflow, source, published_by) -> WorkflowVersion:
    """Validate `source` and make it the workflow's next, current version.

    Publishing the same spec as the current version returns the current version unchanged.
    """
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    spec, canonical = spec_parse(source, author=published_by)
    if spec.slug != workflow.slug:
        raise InvalidInput(
            f"The spec's slug '{spec.slug}' is not this workflow's ('{workflow.slug}').",
            details={"slug": f"must be '{workflow.slug}'"},
        )
    current = workflow.current_version
    if current is not None and current.checksum == spec_checksum(canonical):
        return current
    version = _version_add(workflow, source, canonical, published_by)
    audit_record(actor=published_by, action="workflow.publish", obj=workflow,
                 before={"version": current.number if current else None},
                 after={"version": version.number, "checksum": version.checksum})  # fmt: skip
    workflow.name = spec.name or workflow.name
    workflow.description = spec.description or workflow.description
    workflow.save(update_fields=["name", "description", "updated_at"])
    return version


def _version_add(workflow, source, canonical, user) -> WorkflowVersion:
    last = workflow.versions.order_by("-number").values_list("number", flat=True).first() or 0
    text = source if isinstance(source, str) else _as_yaml(source)
    version = WorkflowVersion.objects.create(
        workflow=workflow,
        number=last + 1,
        spec=canonical,
        source=text,
        checksum=spec_checksum(canonical),
        published_by=user,
    )
    workflow.current_version = version
    workflow.save(update_fields=["current_version", "updated_at"])
    return version


def _as_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


@transaction.atomic
def workflow_set_paused(*, workflow: Workflow, paused: bool, by=None) -> Workflow:
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    before, workflow.paused = workflow.paused, paused
    workflow.save(update_fields=["paused", "updated_at"])
    audit_record(actor=by, action="workflow.pause" if paused else "workflow.unpause",
                 obj=workflow, before={"paused": before}, after={"paused": paused})  # fmt: skip
    return workflow
