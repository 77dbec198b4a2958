"""The dashboard's list of runs: the runs a user may view, newest first, filtered by status and
workflow, a page at a time by keyset (the cursor is the last row's creation time and id), so a
page costs the same on the millionth run as on the first."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform

from workflows import selectors
from workflows.models import Run, RunStatus

PAGE_SIZE = 50
WORKFLOWS_OFFERED = 500  # the workflow filter's choices


@dataclass(frozen=True)
class RunsFilter:
    status: str = ""
    workflow: str = ""
    before: str = ""  # a cursor: the page starts after this row

    @classmethod
    def from_query(cls, query) -> "RunsFilter":
        status = query.get("status", "")
        return cls(
            status=status if status in RunStatus.values else "",
            workflow=query.get("workflow", "")[:100],
            before=query.get("before", "")[:100],
        )


@dataclass(frozen=True)
class RunsPage:
    runs: list[Run]
    next_cursor: str | None  # None: this is the last page


def cursor_of(run: Run) -> str:
    return f"{run.created_at.isoformat()}_{run.pk}"


def _cursor_parse(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    at, _, pk = cursor.rpartition("_")
    try:
        return datetime.fromisoformat(at), uuid.UUID(pk)
    except ValueError:
        return None  # a mangled cursor starts from the newest run


def runs_page(*, user, filters: RunsFilter) -> RunsPage:
    runs = (
        selectors.runs_list(user=user, workflow_slug=filters.workflow, status=filters.status)
        .annotate(schedule=KeyTextTransform("schedule", "ctx"))
        .order_by("-created_at", "-id")
    )
    after = _cursor_parse(filters.before) if filters.before else None
    if after is not None:
        at, pk = after
        runs = runs.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
    rows = list(runs[: PAGE_SIZE + 1])
    next_cursor = cursor_of(rows[PAGE_SIZE - 1]) if len(rows) > PAGE_SIZE else None
    return RunsPage(runs=rows[:PAGE_SIZE], next_cursor=next_cursor)


def workflow_choices(*, user) -> list[str]:
    """The slugs of the workflows the user may view, for the workflow filter."""
    slugs = selectors.workflows_visible_to(user).order_by("slug").values_list("slug", flat=True)
    return list(slugs[:WORKFLOWS_OFFERED])
