"""Row locks, in one place. Order: a run before its steps; a parent run before nothing else."""

from django.db import connection

from workflows.models import Run


def run_lock(run_id) -> Run:
    """Lock and return the run. Call inside a transaction."""
    assert connection.in_atomic_block
    return (
        Run.objects.select_for_update(of=("self",))
        .select_related("version", "workflow")
        .get(pk=run_id)
    )
