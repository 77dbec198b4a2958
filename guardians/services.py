"""Publishing guardians: a spec validated whole first, saved with its audit entry in one
transaction, so an invalid spec changes nothing. Published versions are never edited."""

from django.db import transaction

from accounts.audit import audit_record
from guardians.models import Guardian, GuardianVersion
from guardians.selectors import composite_chains
from guardians.specs import guardian_parse
from workflows.engine import api


def guardian_create(*, source, by=None) -> Guardian:
    """Version 1 of a new guardian; Conflict when the slug is taken."""
    spec, canonical = guardian_parse(source, composites=composite_chains())
    with transaction.atomic():
        if Guardian.objects.filter(slug=spec.slug).exists():
            raise api.Conflict(f"Guardian '{spec.slug}' already exists.", code="exists")
        guardian = Guardian.objects.create(slug=spec.slug, created_by=by)
        _publish(guardian, canonical, by)
    return guardian


def guardian_version_publish(*, guardian: Guardian, source, by=None) -> GuardianVersion:
    """The next version of the guardian (the current one when the spec is unchanged)."""
    with transaction.atomic():
        guardian = Guardian.objects.select_for_update().get(pk=guardian.pk)
        # Parsed under the lock: two composites published at once cannot close a cycle unseen.
        spec, canonical = guardian_parse(source, composites=composite_chains())
        if spec.slug != guardian.slug:
            raise api.spec_invalid([api.SpecError("slug", f"must stay '{guardian.slug}'")])
        current = guardian.current_version
        if current is not None and current.checksum == api.spec_checksum(canonical):
            return current
        return _publish(guardian, canonical, by)


def _publish(guardian: Guardian, canonical: dict, by) -> GuardianVersion:
    previous = guardian.current_version
    number = (previous.number if previous else 0) + 1
    checksum = api.spec_checksum(canonical)
    version = GuardianVersion.objects.create(
        guardian=guardian, number=number, kind=canonical["kind"], config=canonical["config"],
        on_error=canonical.get("on_error", "block"), spec=canonical, checksum=checksum,
        published_by=by,
    )  # fmt: skip
    guardian.current_version = version
    guardian.save(update_fields=["current_version", "updated_at"])
    audit_record(actor=by, action="guardian.publish", obj=guardian,
                 before={"version": previous.number, "checksum": previous.checksum}
                 if previous else None,
                 after={"version": number, "kind": version.kind, "checksum": checksum})  # fmt: skip
    return version
