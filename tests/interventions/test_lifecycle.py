"""Every status pair through the one transition function: the allowed ones move, audit and write
their run event; the others raise Conflict and change nothing."""

import itertools

import pytest
from django.db import transaction

from accounts.models import AuditEntry
from config.errors import Conflict
from interventions.lifecycle import intervention_transition
from interventions.models import TRANSITIONS, Intervention, Status
from tests.interventions.conftest import waiting_on
from tests.interventions.test_flows import APPROVAL
from workflows.models import RunEvent

pytestmark = pytest.mark.django_db

ALLOWED = {
    (Status.OPEN, Status.CLAIMED), (Status.CLAIMED, Status.OPEN),
    *itertools.product((Status.OPEN, Status.CLAIMED),
                       (Status.RESOLVED, Status.EXPIRED, Status.CANCELLED)),
}  # fmt: skip


def test_the_table_is_the_lifecycle_of_the_design():
    table = {(source, to) for source, targets in TRANSITIONS.items() for to in targets}
    assert table == ALLOWED


@pytest.mark.parametrize(
    ("source", "target"), list(itertools.product(Status.values, Status.values))
)
def test_each_pair_moves_only_as_the_table_says(start, drain, source, target):
    run = start(APPROVAL)
    drain()
    intervention = waiting_on(run)
    Intervention.objects.filter(pk=intervention.pk).update(status=source)
    intervention.refresh_from_db()
    events = RunEvent.objects.filter(run=run).count()

    with transaction.atomic():
        if (source, target) in ALLOWED:
            intervention_transition(intervention, target, act="cancel", actor=None, reason="t")
        else:
            with pytest.raises(Conflict) as refused:
                intervention_transition(intervention, target, act="cancel", actor=None)
            assert refused.value.details == {"status": source, "requested": target}

    intervention.refresh_from_db()
    moved = (source, target) in ALLOWED
    assert intervention.status == (target if moved else source)
    assert RunEvent.objects.filter(run=run).count() == events + moved
    audited = AuditEntry.objects.filter(
        action="intervention.cancel", object_id=str(intervention.pk)
    )
    assert audited.count() == moved
