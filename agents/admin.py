"""Providers, agents, their versions and LLM calls in the operator's console.

Definitions are saved from a spec (YAML or JSON) through the same services as the API, from the
form's `clean()`, so every spec error lands on the form with its path and nothing is saved.
Versions and calls are history: read-only. Breakers are shown and reset here.
"""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.template.response import TemplateResponse
from django.urls import path

from agents import breaker
from agents.models import Agent, AgentVersion, LLMCall, Provider
from agents.services import (
    agent_create,
    agent_version_publish,
    agents_enable,
    provider_breaker_reset,
    provider_save,
)
from config.admin import ReadOnlyAdmin
from config.forms import SpecForm, VersionedSpecForm


class ProviderForm(SpecForm):
    class Meta(SpecForm.Meta):
        model = Provider

    def current_spec(self):
        return self.instance.spec if self.instance.pk else None

    def saved(self, source):
        slug = self.instance.slug if self.instance.pk else None
        return provider_save(source=source, by=self.author, slug=slug)[0]


class AgentForm(VersionedSpecForm):
    create, publish = staticmethod(agent_create), staticmethod(agent_version_publish)
    publishes = "agent"

    class Meta(VersionedSpecForm.Meta):
        model = Agent


class _SpecAdmin(admin.ModelAdmin):
    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.author = request.user
        return form

    def save_model(self, request, obj, form, change):
        """The form's service call saved it already."""

    def has_delete_permission(self, request, obj=None):
        return False  # runs and calls name them; disable an agent instead


@admin.register(Provider)
class ProviderAdmin(_SpecAdmin):
    form = ProviderForm
    list_display = ("slug", "kind", "breaker_state", "breaker_failures", "updated_at")
    list_filter = ("kind",)
    search_fields = ("slug",)
    readonly_fields = ("breaker_state", "breaker_failures")
    actions = ("reset_breakers",)

    def get_fields(self, request, obj=None):
        return ["spec_source"] if obj is None else ["breaker_state", "breaker_failures",
                                                    "spec_source"]  # fmt: skip

    @admin.display(description="breaker")
    def breaker_state(self, provider):
        return breaker.provider_breaker(provider).state

    @admin.display(description="failures in window")
    def breaker_failures(self, provider):
        return breaker.provider_breaker(provider).failures

    @admin.action(description="Reset the selected providers' breakers", permissions=["change"])
    def reset_breakers(self, request, queryset):
        for provider in queryset:
            provider_breaker_reset(provider=provider, by=request.user)
        self.message_user(request, f"Reset {queryset.count()} breaker(s).", messages.SUCCESS)


@admin.register(Agent)
class AgentAdmin(_SpecAdmin):
    form = AgentForm
    list_display = ("slug", "enabled", "version_number", "capabilities", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("slug",)
    actions = ("enable", "disable")

    def get_fields(self, request, obj=None):
        return ["spec_source"] if obj is None else ["enabled", "spec_source"]

    @admin.display(description="version")
    def version_number(self, agent):
        return agent.current_version.number if agent.current_version_id else None

    def get_readonly_fields(self, request, obj=None):
        return ("enabled",) if obj else ()

    @admin.action(description="Enable the selected agents", permissions=["change"])
    def enable(self, request, queryset):
        agents_enable(queryset, enabled=True, by=request.user)

    @admin.action(description="Disable the selected agents", permissions=["change"])
    def disable(self, request, queryset):
        agents_enable(queryset, enabled=False, by=request.user)


class _HistoryAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    pass


@admin.register(AgentVersion)
class AgentVersionAdmin(_HistoryAdmin):
    list_display = ("agent", "number", "published_by", "published_at")
    list_select_related = ("agent", "published_by")
    readonly_fields = ("agent", "number", "checksum", "published_by", "published_at", "spec_json")
    exclude = ("spec",)

    @admin.display(description="spec")
    def spec_json(self, version):
        return json.dumps(version.spec, indent=2)


@admin.register(LLMCall)
class LLMCallAdmin(_HistoryAdmin):
    list_display = ("at", "workflow", "run_id", "step_id", "provider", "model", "attempt",
                    "outcome", "latency_ms", "input_tokens", "output_tokens", "cost_usd",
                    "simulated")  # fmt: skip
    list_filter = ("outcome", "provider", "simulated", "workflow")
    search_fields = ("=run_id", "step_id", "model")
    date_hierarchy = "at"
    change_list_template = "admin/agents/llmcall/change_list.html"

    def get_urls(self):
        costs = path("costs/", self.admin_site.admin_view(self.costs_view), name="agents_costs")
        return [costs, *super().get_urls()]

    def costs_view(self, request):
        """What LLM calls cost per workflow per day, newest day first."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = (
            LLMCall.objects.annotate(day=TruncDate("at"))
            .values("day", "workflow")
            .annotate(calls=Count("pk"), cost=Sum("cost_usd"),
                      tokens_in=Sum("input_tokens"), tokens_out=Sum("output_tokens"))
            .order_by("-day", "workflow")[:2000]
        )  # fmt: skip
        title = "LLM cost per workflow per day"
        context = {**self.admin_site.each_context(request), "title": title, "rows": rows,
                   "opts": self.model._meta}  # fmt: skip
        return TemplateResponse(request, "admin/agents/costs.html", context)
