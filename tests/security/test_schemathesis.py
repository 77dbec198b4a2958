"""Hostile input never yields a 5xx, an undocumented status or a body the schema does not
describe: schemathesis generates requests for every operation of the OpenAPI schema
(drf-spectacular's) and checks each answer, as an operator, whose global permissions reach every
code path, and as a pilot, who may view some objects and act on few. Path parameters name real
objects for half the cases (a slug or id drawn at random is a 404 before anything else runs).
Each case runs in a savepoint rolled back after it, so every case meets the same objects.
Throttles and the sign-in lockout are relaxed by the test settings."""

import zlib

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from guardian.shortcuts import assign_perm
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from agents.services import agent_create, provider_save
from guardians.services import guardian_create
from interventions.models import Intervention
from tests.conftest import drain
from workflows.api import stream
from workflows.engine import api
from workflows.services import workflow_create

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 20  # per operation: bounded (the test's time), not exhaustive
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
ASKING = "slug: asking\nsteps: [{id: ask, human: {type: approval, group: pilot}}]\n"


@pytest.fixture
def connection_kept(monkeypatch):
    """The WSGI app as Django's test client runs it: a request's start and end must not close
    the test's connection (it is inside the test's transaction); nor may the event stream, which
    lets its connection go after each read (for ASGI, where a stream lives long)."""
    monkeypatch.setattr(stream, "_release_connection", lambda: None)
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def known(make_user) -> dict[str, str]:
    """Path parameter values that name real objects: an operator's workflow (a pilot may view
    it) with a run waiting on an approval for pilots, an ended run (its event stream ends, so a
    WSGI client can read it whole), and a provider, an agent and a guardian."""
    operator = make_user("operator", username="operator")
    workflow = workflow_create(source=ASKING, created_by=operator)
    assign_perm("workflows.view_workflow", make_user("pilot", username="pilot"), workflow)
    waiting, _ = api.run_start(workflow=workflow, inputs={}, started_by=operator)
    ended, _ = api.run_start(workflow=workflow, inputs={}, started_by=operator)
    drain()
    api.run_cancel(run_id=ended.pk, by=operator)
    provider_save(source={"slug": "sim", "kind": "simulated"}, by=operator)
    chain = [{"provider": "sim", "model": "m"}]
    agent_create(source={"slug": "helper", "prompt": "hi", "chain": chain}, by=operator)
    guardian_create(source={"slug": "gate", "kind": "PASS_THRU"}, by=operator)
    intervention = Intervention.objects.get(run_id=waiting.pk)
    return {"workflows": "asking", "providers": "sim", "agents": "helper", "guardians": "gate",
            "runs": str(waiting.pk), "stream": str(ended.pk),
            "interventions": str(intervention.pk)}  # fmt: skip


def _real(path: str, known: dict[str, str]) -> str:
    if path.endswith("/events/stream/"):
        return known["stream"]
    return known[path.split("/")[2]]


# Served by WSGI here, the event stream's async body is read whole (a run that has ended).
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")
@pytest.mark.parametrize("role", ["operator", "pilot"])
def test_no_generated_request_gets_a_server_error_or_an_answer_the_schema_does_not_describe(
    role, known, django_user_model, connection_kept, security_figure
):
    schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(public=True))
    schema.app = get_wsgi_application()

    @schema.hook
    def map_path_parameters(context, path_parameters):
        # Half the cases (by the drawn value, so hypothesis replays them alike) name real objects.
        path = context.operation.path
        return path_parameters and {
            name: _real(path, known) if zlib.crc32(str(value).encode()) % 2 else value
            for name, value in path_parameters.items()
        }

    caller = django_user_model.objects.get(username=role)
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(caller).access_token}"}
    cases, failures = 0, []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def exercise(case):
            nonlocal cases
            cases += 1
            with transaction.atomic():
                case.call_and_validate(headers=headers, checks=CHECKS)
                transaction.set_rollback(True)

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as failure:  # every operation's, reported
            failures.append(f"{operation.method.upper()} {operation.path}: {failure}")

    security_figure(f"schemathesis as {role}: {cases} cases over {len(operations)} operations, "
                    f"{len(failures)} operations failing")  # fmt: skip
    assert failures == [], "\n\n".join(failures)
