"""Publishing guardians: a spec validated whole first, saved with its audit entry in one
transaction, so an invalid spec changes nothing. Published versions are never edited."""

from django.db import IntegrityError, connection, transaction

from accounts.audit import audit_record
from guardians.models import Guardian, GuardianVersion
from guardians.selectors import composite_chains
from guardians.specs import guardian_parse
from workflows.engine import api


def guardian_create(*, source, by=None) -> Guardian:
    """Version 1 of a new guardian; Conflict when the slug is taken."""
    with transaction.atomic():
        _publishes_one_at_a_time()
        spec, canonical = guardian_parse(source, composites=composite_chains())
        conflict = api.Conflict(f"A guardian '{spec.slug}' already exists.", code="exists",
                                details={"slug": "already exists"})  # fmt: skip
        if Guardian.objects.filter(slug=spec.slug).exists():
            raise conflict
        try:
            with transaction.atomic():
                guardian = Guardian.objects.create(slug=spec.slug, created_by=by)
        except IntegrityError:  # created meanwhile
            raise conflict from None
        _publish(guardian, canonical, by)
    return guardian


def guardian_version_publish(*, guardian: Guardian, source, by=None) -> GuardianVersion:
    """The next version of the guardian (the current one when the spec is unchanged)."""
    with transaction.atomic():
        _publishes_one_at_a_time()
        guardian = Guardian.objects.select_for_update().get(pk=guardian.pk)
        spec, canonical = guardian_parse(source, composites=composite_chains())
        if spec.slug != guardian.slug:
            raise api.spec_invalid([api.SpecError("slug", f"must stay '{guardian.slug}'")])
        current = guardian.current_version
        if current is not None and current.checksum == api.spec_checksum(canonical):
            return current
        return _publish(guardian, canonical, by)


# Any number that no other pg_advisory_xact_lock of this database takes.
PUBLISH_LOCK = 0x67_75_61_72_64  # "guard"


def _publishes_one_at_a_time() -> None:
    """Serialise guardian publishes for the rest of the transaction: each parses against the
    chains of all others as committed, so two composites published at once cannot close a cycle
    or pass the reach limits unseen (SQLite's IMMEDIATE transactions serialise writes already)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PUBLISH_LOCK])


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
