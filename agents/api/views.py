"""Providers (with their breakers), agents and their versions, and a run's LLM calls.

Definitions are global configuration: who lacks the model's view permission sees none (an
empty list, a 404), who may view but not add or change gets a 403. A run's LLM calls follow the
run: visible exactly when the run is.
"""

from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from agents import breaker
from agents.api import serializers as s
from agents.models import Agent, AgentVersion, LLMCall, Provider
from agents.selectors import llm_calls_of_run
from agents.services import (
    agent_create,
    agent_version_publish,
    agents_enable,
    provider_breaker_reset,
    provider_save,
)
from config.errors import NotFound
from config.pagination import BySlug, NewestVersionFirst, OldestFirst
from config.serializers import SpecInput, api_errors, parsed, require
from workflows.engine import api


def _visible(user, model) -> bool:
    return user.has_perm(f"agents.view_{model._meta.model_name}")


def _with_breaker(provider: Provider) -> Provider:
    state = breaker.provider_breaker(provider)
    opened = state.opened_at and datetime.fromtimestamp(state.opened_at, tz=UTC)
    provider.breaker = {**vars(state), "opened_at": opened}
    return provider


def _provider(user, slug: str) -> Provider:
    provider = Provider.objects.filter(slug=slug).first() if _visible(user, Provider) else None
    if provider is None:
        raise NotFound(f"No provider '{slug}'.")
    return _with_breaker(provider)


def _agent(user, slug: str) -> Agent:
    agents = Agent.objects.select_related("current_version__published_by")
    agent = agents.filter(slug=slug).first() if _visible(user, Agent) else None
    if agent is None:
        raise NotFound(f"No agent '{slug}'.")
    return agent


class ProvidersView(generics.ListAPIView):
    queryset = Provider.objects.none()
    serializer_class = s.ProviderSerializer
    pagination_class = BySlug

    def get_queryset(self):
        visible = _visible(self.request.user, Provider)
        return Provider.objects.all() if visible else Provider.objects.none()

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return [_with_breaker(provider) for provider in page]

    @extend_schema(summary="List providers, each with its breaker")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a provider from a spec",
        request=SpecInput,
        responses={201: s.ProviderSerializer, **api_errors(400, 403, 409)},
    )
    def post(self, request):
        require(request.user.has_perm("agents.add_provider"), "You may not create providers.")
        data = parsed(SpecInput, request.data)
        spec_slug = api.spec_load_text(data["spec"]).get("slug")
        if isinstance(spec_slug, str) and Provider.objects.filter(slug=spec_slug).exists():
            raise api.Conflict(f"A provider '{spec_slug}' already exists.", code="exists",
                               details={"slug": "already exists"})  # fmt: skip
        provider, _ = provider_save(source=data["spec"], by=request.user)
        return Response(
            s.ProviderSerializer(_with_breaker(provider)).data, status=status.HTTP_201_CREATED
        )


class ProviderView(generics.GenericAPIView):
    queryset = Provider.objects.none()
    serializer_class = s.ProviderSerializer
    lookup_field = "slug"

    @extend_schema(summary="A provider and its breaker", responses={200: s.ProviderSerializer,
                   **api_errors(404)})  # fmt: skip
    def get(self, request, slug):
        return Response(s.ProviderSerializer(_provider(request.user, slug)).data)

    @extend_schema(
        summary="Replace a provider's spec (edited in place)",
        request=SpecInput,
        responses={200: s.ProviderSerializer, **api_errors(400, 403, 404)},
    )
    def put(self, request, slug):
        _provider(request.user, slug)
        require(request.user.has_perm("agents.change_provider"), "You may not edit providers.")
        data = parsed(SpecInput, request.data)
        provider, _ = provider_save(source=data["spec"], by=request.user, slug=slug)
        return Response(s.ProviderSerializer(_with_breaker(provider)).data)


class ProviderResetView(generics.GenericAPIView):
    queryset = Provider.objects.none()
    serializer_class = s.ProviderSerializer
    lookup_field = "slug"

    @extend_schema(
        summary="Close the provider's breaker",
        request=None,
        responses={200: s.ProviderSerializer, **api_errors(403, 404)},
    )
    def post(self, request, slug):
        provider = _provider(request.user, slug)
        require(request.user.has_perm("agents.change_provider"), "You may not reset breakers.")
        provider_breaker_reset(provider=provider, by=request.user)
        return Response(s.ProviderSerializer(_with_breaker(provider)).data)


class AgentsView(generics.ListAPIView):
    queryset = Agent.objects.none()
    serializer_class = s.AgentSerializer
    pagination_class = BySlug

    def get_queryset(self):
        if not _visible(self.request.user, Agent):
            return Agent.objects.none()
        return Agent.objects.select_related("current_version__published_by")

    @extend_schema(summary="List agents with their current versions")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create an agent from a spec (its version 1)",
        request=SpecInput,
        responses={201: s.AgentSerializer, **api_errors(400, 403, 409)},
    )
    def post(self, request):
        require(request.user.has_perm("agents.add_agent"), "You may not create agents.")
        data = parsed(SpecInput, request.data)
        agent = agent_create(source=data["spec"], by=request.user)
        return Response(
            s.AgentSerializer(_agent(request.user, agent.slug)).data,
            status=status.HTTP_201_CREATED,
        )


class AgentView(generics.GenericAPIView):
    queryset = Agent.objects.none()
    serializer_class = s.AgentSerializer
    lookup_field = "slug"

    @extend_schema(summary="An agent with its current version", responses={200: s.AgentSerializer,
                   **api_errors(404)})  # fmt: skip
    def get(self, request, slug):
        return Response(s.AgentSerializer(_agent(request.user, slug)).data)

    @extend_schema(
        summary="Enable or disable an agent",
        request=s.AgentUpdateInput,
        responses={200: s.AgentSerializer, **api_errors(400, 403, 404)},
    )
    def patch(self, request, slug):
        agent = _agent(request.user, slug)
        require(request.user.has_perm("agents.change_agent"), "You may not change agents.")
        enabled = parsed(s.AgentUpdateInput, request.data)["enabled"]
        agents_enable(Agent.objects.filter(pk=agent.pk), enabled=enabled, by=request.user)
        return Response(s.AgentSerializer(_agent(request.user, slug)).data)


class AgentVersionsView(generics.ListAPIView):
    queryset = AgentVersion.objects.none()
    serializer_class = s.AgentVersionSerializer
    pagination_class = NewestVersionFirst
    lookup_field = "slug"

    def get_queryset(self):
        agent = _agent(self.request.user, self.kwargs["slug"])
        return agent.versions.select_related("published_by")

    @extend_schema(summary="An agent's versions, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Publish a new spec as the agent's next version",
        request=SpecInput,
        responses={
            201: s.AgentVersionSerializer,
            200: s.AgentVersionSerializer,
            **api_errors(400, 403, 404),
        },
    )
    def post(self, request, slug):
        agent = _agent(request.user, slug)
        require(request.user.has_perm("agents.change_agent"), "You may not publish agents.")
        data = parsed(SpecInput, request.data)
        previous = agent.current_version_id
        version = agent_version_publish(agent=agent, source=data["spec"], by=request.user)
        created = version.pk != previous
        return Response(
            s.AgentVersionSerializer(version).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class RunLLMCallsView(generics.ListAPIView):
    queryset = LLMCall.objects.none()
    serializer_class = s.LLMCallSerializer
    pagination_class = OldestFirst

    def get_queryset(self):
        run = api.run_visible(user=self.request.user, run_id=self.kwargs["run_id"])
        return llm_calls_of_run(run.pk)

    @extend_schema(summary="Every LLM call attempt of a run, oldest first",
                   responses={200: s.LLMCallSerializer(many=True), **api_errors(404)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
