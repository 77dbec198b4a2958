"""Guardians from the operator's console: specs validated with their paths, nothing saved when
wrong, a dry run from the guardian's page, versions and decisions read-only."""

import json

import pytest
from django.urls import reverse

from guardians.models import Guardian, GuardianDecision, GuardianVersion

pytestmark = pytest.mark.django_db

GATE = "slug: confidence\nkind: CRITERIA_GATE\nconfig: {all: ['steps.risk.output.score < 0.7']}\n"


@pytest.fixture
def console(client, operator):
    operator.is_staff = True
    operator.save(update_fields=["is_staff"])
    client.force_login(operator)
    return client


def test_a_guardian_is_added_from_its_spec_and_published_from_its_page(console):
    refused = console.post(reverse("admin:guardians_guardian_add"),
                           {"spec_source": GATE.replace("< 0.7", "<")})  # fmt: skip
    assert "config.all[0]: syntax error" in refused.content.decode()
    assert not Guardian.objects.exists()

    console.post(reverse("admin:guardians_guardian_add"), {"spec_source": GATE})
    guardian = Guardian.objects.get()
    page = console.get(reverse("admin:guardians_guardian_change", args=[guardian.pk]))
    console.post(reverse("admin:guardians_guardian_change", args=[guardian.pk]),
                 {"spec_source": GATE.replace("0.7", "0.8")})  # fmt: skip

    assert "Dry run on a sample context" in page.content.decode()
    guardian.refresh_from_db()
    assert guardian.current_version.number == 2


def test_a_dry_run_from_the_console_shows_outcome_reason_and_evidence(console):
    console.post(reverse("admin:guardians_guardian_add"), {"spec_source": GATE})
    url = reverse("admin:guardians_guardian_dry_run", args=[Guardian.objects.get().pk])
    sample = {"steps": {"risk": {"status": "SUCCEEDED", "output": {"score": 0.9}}}}

    shown = console.post(url, {"payload": json.dumps(sample)}).content.decode()
    refused = console.post(url, {"payload": "[1]"}).content.decode()

    assert 'class="outcome">block<' in shown
    assert "all[0] does not hold" in shown and "&quot;steps.risk.output.score&quot;: 0.9" in shown
    assert "must be a JSON object" in refused
    assert not GuardianDecision.objects.exists()


def test_versions_and_decisions_are_read_only(console):
    console.post(reverse("admin:guardians_guardian_add"), {"spec_source": GATE})
    version = GuardianVersion.objects.get()

    page = console.get(reverse("admin:guardians_guardianversion_change", args=[version.pk]))
    added = console.get(reverse("admin:guardians_guardiandecision_add"))

    assert page.status_code == 200 and "steps.risk.output.score" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert added.status_code == 403
