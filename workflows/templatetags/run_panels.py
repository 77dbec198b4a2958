"""`{% load run_panels %}{% run_panels run %}` (or `only="llm-calls,guardian-decisions"`): the
sections plug-ins register about a run, for the signed-in user."""

from django import template

from workflows.dashboard.panels import panels_render

register = template.Library()


@register.simple_tag(takes_context=True)
def run_panels(context, run, only: str = ""):
    request = context["request"]
    return panels_render(run=run, user=request.user, request=request, only=only)
