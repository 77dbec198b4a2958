import re
import time

import pytest

from tests.conftest import wait_for_run
from workflows.engine.runs import run_start
from workflows.models import RunStatus


def sample(text: str, name: str, **labels) -> float:
    """The value of metric `name` whose labels include `labels`, 0 when absent."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{key}="{value}"' in match.group(1) for key, value in labels.items()):
            total += float(match.group(2))
    return total


@pytest.mark.django_db(transaction=True)
def test_metrics_recorded_by_worker_processes_reach_the_web_scrape(
    celery_worker, make_workflow, make_user, operator, client
):
    workflow = make_workflow("slug: metered\nsteps:\n  - id: a\n    tool: noop\n")
    completed = {"workflow": "metered", "status": "COMPLETED"}
    client.force_login(make_user(superuser=True))
    before = client.get("/metrics").content.decode()

    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    assert wait_for_run(run).status == RunStatus.COMPLETED

    # The worker counts the run just after its commit, so the scrape may lag the row briefly.
    deadline = time.monotonic() + 10
    while True:
        after = client.get("/metrics").content.decode()
        counted = sample(after, "chameleon_runs_total", **completed)
        if counted or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert counted == 1 + sample(before, "chameleon_runs_total", **completed)
    assert sample(after, "chameleon_step_seconds_count", kind="tool") >= 1 + sample(
        before, "chameleon_step_seconds_count", kind="tool"
    )
