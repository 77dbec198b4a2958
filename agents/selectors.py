"""Reading agents' records about runs."""

from django.db.models import Count, Sum

from agents.models import LLMCall

PANEL_CALLS = 100  # the run page shows a run's latest calls; the API pages through all of them


def llm_calls_of_run(run_id):
    """Every LLM call attempt of the run (cache hits and skipped attempts too), oldest first."""
    calls = LLMCall.objects.filter(run_id=run_id).select_related("agent_version__agent")
    return calls.order_by("at", "id")


def llm_calls_panel(run, user) -> dict:
    """The run's latest calls (oldest of them first) and the totals of all of them."""
    calls = llm_calls_of_run(run.pk)
    totals = calls.aggregate(
        count=Count("id"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cost_usd=Sum("cost_usd"),
    )
    latest = list(calls.order_by("-at", "-id")[:PANEL_CALLS])[::-1]
    return {"calls": latest, "totals": totals, "hidden": totals["count"] - len(latest)}
