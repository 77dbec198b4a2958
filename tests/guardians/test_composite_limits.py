"""A composite's reach is bounded when it is published: no member twice, at most
MAX_EVALUATIONS guardian evaluations beneath it (counted through the tree, and for every
composite chaining it), at most MAX_DEPTH levels; its evidence is bounded too. Publishes run one
at a time, so two composites published at once cannot close a cycle; two creates of one slug
are a 201 and a 409, never a 500."""

import json
import threading

import pytest
from django.db import connection
from django.db.models import QuerySet

from guardians.evaluation import evaluate
from guardians.models import Guardian, GuardianVersion
from guardians.specs import MAX_DEPTH, MAX_EVALUATIONS
from tests.workflows.test_api import assert_error, client_for

LEAVES = [f"l{index}" for index in range(20)]


@pytest.fixture
def ops(operator):
    return client_for(operator)


def _post(ops, slug, kind="COMPOSITE", **config):
    spec = {"slug": slug, "kind": kind, "config": config}
    return ops.post("/api/guardians/", {"spec": spec}, format="json")


def _publish(ops, slug, kind="COMPOSITE", **config):
    spec = {"slug": slug, "kind": kind, "config": config}
    return ops.post(f"/api/guardians/{slug}/versions/", {"spec": spec}, format="json")


def _leaves(ops):
    for slug in LEAVES:
        assert _post(ops, slug, "PASS_THRU").status_code == 201


@pytest.mark.django_db
def test_a_member_listed_twice_is_refused_naming_it(ops):
    _leaves(ops)

    body = assert_error(_post(ops, "c", guardians=["l0", "l1", "l0"]), 400)

    assert body["details"] == {
        "config.guardians[2]": ["'l0' is listed already (config.guardians[0])"]
    }
    assert not Guardian.objects.filter(slug="c").exists()


@pytest.mark.django_db
def test_a_composite_reaching_too_many_evaluations_is_refused(ops):
    _leaves(ops)
    assert _post(ops, "a", guardians=LEAVES).status_code == 201  # 20
    assert _post(ops, "b", guardians=["a", *LEAVES[1:]]).status_code == 201  # 21 + 19

    body = assert_error(_post(ops, "c", guardians=["b", "a"]), 400)  # 41 + 21

    assert body["details"] == {"config.guardians": [
        f"it would reach 62 guardian evaluations through its members (at most {MAX_EVALUATIONS})"
    ]}  # fmt: skip


@pytest.mark.django_db
def test_growing_a_member_past_what_a_composite_chaining_it_may_reach_is_refused(ops):
    _leaves(ops)
    for slug in ("x", "y", "z"):
        assert _post(ops, slug, "PASS_THRU").status_code == 201
    assert _post(ops, "outer", guardians=["x", "y", "z"]).status_code == 201
    assert _publish(ops, "x", guardians=LEAVES).status_code == 201  # outer: 21 + 1 + 1
    assert _publish(ops, "y", guardians=LEAVES).status_code == 201  # outer: 21 + 21 + 1

    body = assert_error(_publish(ops, "z", guardians=LEAVES), 400)  # outer: 63

    assert body["details"] == {"config.guardians": [
        "'outer', which chains it, would reach 63 guardian evaluations through its members "
        f"(at most {MAX_EVALUATIONS})"
    ]}  # fmt: skip
    assert GuardianVersion.objects.filter(guardian__slug="z").count() == 1


@pytest.mark.django_db
def test_composites_nesting_deeper_than_max_depth_are_refused(ops):
    _post(ops, "leaf", "PASS_THRU")
    below = "leaf"
    for level in range(1, MAX_DEPTH + 1):
        assert _post(ops, f"d{level}", guardians=[below]).status_code == 201
        below = f"d{level}"

    body = assert_error(_post(ops, "deeper", guardians=[below]), 400)

    assert body["details"] == {"config.guardians": [
        f"it would nest composites {MAX_DEPTH + 1} deep (at most {MAX_DEPTH})"
    ]}  # fmt: skip
    deepest = Guardian.objects.get(slug=below).current_version
    assert evaluate(deepest, {"inputs": {}, "steps": {}, "run": {}}).outcome == "allow"


@pytest.mark.django_db
def test_a_composite_keeps_its_members_evidence_only_at_the_top_and_within_a_budget(
    ops, monkeypatch
):
    gate = {"all": ["inputs.note != 'x'"]}
    for slug in ("g1", "g2"):
        _post(ops, slug, "CRITERIA_GATE", **gate)
    _post(ops, "inner", guardians=["g1", "g2"])
    _post(ops, "top", guardians=["inner", "g1"])
    top = Guardian.objects.get(slug="top").current_version
    context = {"inputs": {"note": "n" * 100}, "steps": {}, "run": {}}

    members = evaluate(top, context).evidence["members"]

    assert [member["guardian"] for member in members] == ["inner", "g1"]
    assert members[0]["evidence"] == {"members": [
        {"guardian": slug, "version": 1, "outcome": "allow", "reason": member["reason"]}
        for slug, member in zip(("g1", "g2"), members[0]["evidence"]["members"], strict=True)
    ]}  # fmt: skip
    assert members[1]["evidence"] == {"inputs.note": "n" * 100}

    kept, left_out = (len(json.dumps(member["evidence"])) for member in members)
    monkeypatch.setattr("guardians.kinds.MAX_MEMBERS_EVIDENCE_CHARS", kept + left_out - 1)
    members = evaluate(top, context).evidence["members"]
    assert members[0]["evidence"]["members"][0]["guardian"] == "g1"  # within the budget
    assert members[1]["evidence"] == f"<evidence of {left_out} characters, left out>"


@pytest.mark.django_db
def test_two_creates_of_one_slug_racing_are_a_conflict(ops, monkeypatch):
    exists = QuerySet.exists

    def taken_meanwhile(queryset):  # another request creates it after the check
        if queryset.model is Guardian:
            monkeypatch.setattr(QuerySet, "exists", exists)
            Guardian.objects.create(slug="g")
            return False
        return exists(queryset)

    monkeypatch.setattr(QuerySet, "exists", taken_meanwhile)

    assert_error(_post(ops, "g", "PASS_THRU"), 409, "exists")


@pytest.mark.django_db(transaction=True)
def test_two_composites_published_at_once_cannot_close_a_cycle(operator):
    clients = [client_for(operator) for _ in range(2)]
    for slug in ("a", "b"):
        assert _post(clients[0], slug, "PASS_THRU").status_code == 201
    barrier, codes = threading.Barrier(2), {}

    def publish(client, slug, member):
        barrier.wait()
        try:
            codes[slug] = _publish(client, slug, guardians=[member]).status_code
        finally:
            connection.close()

    threads = [
        threading.Thread(target=publish, args=(clients[0], "a", "b")),
        threading.Thread(target=publish, args=(clients[1], "b", "a")),
    ]
    [thread.start() for thread in threads]
    [thread.join(30) for thread in threads]

    assert sorted(codes.values()) == [201, 400]
