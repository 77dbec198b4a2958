"""Rendering the sections plug-ins register about a run (engine.api.run_panel_register) on any
dashboard page: each in its own element that reloads itself from the database when the run has
an event of the kinds that change it."""

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from workflows.engine.registry import RunPanel, run_panels


def panels_chosen(only: str = "") -> list[RunPanel]:
    """The registered panels, or those named in `only` (comma-separated), in registration order."""
    names = {name.strip() for name in only.split(",") if name.strip()}
    return [panel for panel in run_panels() if not names or panel.name in names]


def panel_find(name: str) -> RunPanel | None:
    return next((panel for panel in run_panels() if panel.name == name), None)


def panel_body(panel: RunPanel, *, run, user, request=None) -> SafeString:
    """The panel's own content; `run` must be one `user` may view."""
    context = {**panel.context(run, user), "run": run, "panel": panel}
    return render_to_string(panel.template, context, request=request)


def panel_trigger(panel: RunPanel, run_id) -> str:
    """The htmx trigger reloading the panel: a resync, or a batch with an event of its run and
    one of the kinds it cares about (static/dashboard/live.js's flags: `llm.` is `detail.llm`,
    `step.gate` is `detail.step_gate`)."""
    flags = (prefix.rstrip(".").replace(".", "_") for prefix in panel.reload_on)
    kinds = " || ".join(f"detail.{flag}" for flag in flags)
    wanted = f"detail.runs['{run_id}']" + (f" && ({kinds})" if kinds else "")
    return f"live[detail.resync || ({wanted})] from:body"


def panels_render(*, run, user, request=None, only: str = "") -> SafeString:
    """Every chosen panel, each wrapped in its live element (stable id and data-testid)."""
    sections = [
        render_to_string(
            "dashboard/parts/run_panel.html",
            {
                "panel": panel,
                "run": run,
                "trigger": panel_trigger(panel, run.pk),
                "body": panel_body(panel, run=run, user=user, request=request),
            },
            request=request,
        )
        for panel in panels_chosen(only)
    ]
    return mark_safe("".join(sections))  # noqa: S308 - each rendered by the template engine
