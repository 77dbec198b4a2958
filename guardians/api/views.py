"""Guardians and their versions, dry runs, and a run's guardian decisions.

Guardians are global configuration: who lacks `view_guardian` sees none (an empty list, a 404),
who may view but not add or change gets a 403. A run's decisions follow the run: visible
exactly when the run is.
"""

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from config.errors import NotFound
from config.pagination import BySlug, NewestVersionFirst, OldestFirst
from config.serializers import SpecInput, api_errors, parsed, require
from guardians.api import serializers as s
from guardians.models import Guardian, GuardianDecision, GuardianVersion
from guardians.selectors import decisions_of_run, guardian_dry_run
from guardians.services import guardian_create, guardian_version_publish
from workflows.engine import api


def _visible(user) -> bool:
    return user.has_perm("guardians.view_guardian")


def _guardian(user, slug: str) -> Guardian:
    guardians = Guardian.objects.select_related("current_version__published_by")
    guardian = guardians.filter(slug=slug).first() if _visible(user) else None
    if guardian is None:
        raise NotFound(f"No guardian '{slug}'.")
    return guardian


class GuardiansView(generics.ListAPIView):
    queryset = Guardian.objects.none()
    serializer_class = s.GuardianSerializer
    pagination_class = BySlug

    def get_queryset(self):
        if not _visible(self.request.user):
            return Guardian.objects.none()
        return Guardian.objects.select_related("current_version__published_by")

    @extend_schema(summary="List guardians with their current versions")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a guardian from a spec (its version 1)",
        request=SpecInput,
        responses={201: s.GuardianSerializer, **api_errors(400, 403, 409)},
    )
    def post(self, request):
        require(request.user.has_perm("guardians.add_guardian"), "You may not create guardians.")
        data = parsed(SpecInput, request.data)
        guardian = guardian_create(source=data["spec"], by=request.user)
        return Response(
            s.GuardianSerializer(_guardian(request.user, guardian.slug)).data,
            status=status.HTTP_201_CREATED,
        )


class GuardianView(generics.GenericAPIView):
    queryset = Guardian.objects.none()
    serializer_class = s.GuardianSerializer
    lookup_field = "slug"

    @extend_schema(summary="A guardian with its current version",
                   responses={200: s.GuardianSerializer, **api_errors(404)})  # fmt: skip
    def get(self, request, slug):
        return Response(s.GuardianSerializer(_guardian(request.user, slug)).data)


class GuardianVersionsView(generics.ListAPIView):
    queryset = GuardianVersion.objects.none()
    serializer_class = s.GuardianVersionSerializer
    pagination_class = NewestVersionFirst
    lookup_field = "slug"

    def get_queryset(self):
        guardian = _guardian(self.request.user, self.kwargs["slug"])
        return guardian.versions.select_related("published_by")

    @extend_schema(summary="A guardian's versions, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Publish a new spec as the guardian's next version",
        request=SpecInput,
        responses={
            201: s.GuardianVersionSerializer,
            200: s.GuardianVersionSerializer,
            **api_errors(400, 403, 404),
        },
    )
    def post(self, request, slug):
        guardian = _guardian(request.user, slug)
        allowed = request.user.has_perm("guardians.change_guardian")
        require(allowed, "You may not publish guardians.")
        data = parsed(SpecInput, request.data)
        previous = guardian.current_version_id
        version = guardian_version_publish(guardian=guardian, source=data["spec"], by=request.user)
        created = version.pk != previous
        return Response(
            s.GuardianVersionSerializer(version).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class GuardianEvaluateView(generics.GenericAPIView):
    queryset = Guardian.objects.none()
    serializer_class = s.EvaluateInput
    lookup_field = "slug"

    @extend_schema(
        summary="Dry run: what the guardian's current version decides on a sample context",
        request=s.EvaluateInput,
        responses={200: s.VerdictSerializer, **api_errors(400, 404)},
    )
    def post(self, request, slug):
        guardian = _guardian(request.user, slug)
        data = parsed(s.EvaluateInput, request.data)
        verdict = guardian_dry_run(guardian=guardian, payload=data["payload"])
        return Response(s.VerdictSerializer(asdict(verdict)).data)


class RunDecisionsView(generics.ListAPIView):
    queryset = GuardianDecision.objects.none()
    serializer_class = s.GuardianDecisionSerializer
    pagination_class = OldestFirst

    def get_queryset(self):
        run = api.run_visible(user=self.request.user, run_id=self.kwargs["run_id"])
        return decisions_of_run(run.pk)

    @extend_schema(summary="Every guardian decision of a run, oldest first",
                   responses={200: s.GuardianDecisionSerializer(many=True),
                              **api_errors(404)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
