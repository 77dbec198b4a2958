"""The intervention queue and what pilots do to an intervention.

Interventions follow their run: whoever may not view the run gets 404 (and never sees it in the
queue); whoever may view it but is not its assignee, in its candidate group or an
operator/admin gets 403 on acting. State conflicts (claimed by someone else, already resolved,
the step moved on) are 409 with the reason.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response

from config.pagination import QueueOrder
from config.serializers import api_errors, parsed, require
from interventions import selectors, services
from interventions.api import serializers as s
from interventions.models import Intervention


def _visible(request, pk) -> Intervention:
    return selectors.intervention_get_visible(user=request.user, intervention_id=pk)


def _actionable(request, pk) -> Intervention:
    intervention = _visible(request, pk)
    require(selectors.may_act(request.user, intervention), "You may not act on this intervention.")
    return intervention


def _shown(request, pk) -> Response:
    return Response(s.InterventionDetailSerializer(_visible(request, pk)).data)


class InterventionsView(generics.ListAPIView):
    queryset = Intervention.objects.none()  # the model, for the schema; rows come from selectors
    serializer_class = s.InterventionSerializer
    pagination_class = QueueOrder

    def get_queryset(self):
        query = parsed(s.QueueQuery, self.request.query_params)
        return selectors.interventions_queue(
            user=self.request.user, status=query.get("status"), type=query.get("type"),
            assignee_me=query.get("assignee") == "me", group=query.get("group"),
        )  # fmt: skip

    @extend_schema(
        summary="The caller's queue: open and claimed interventions, urgent and due first",
        parameters=[s.QueueQuery],
        responses={200: s.InterventionSerializer(many=True), **api_errors(400)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class InterventionView(generics.GenericAPIView):
    queryset = Intervention.objects.none()
    serializer_class = s.InterventionDetailSerializer

    @extend_schema(summary="An intervention with its context and comments",
                   responses={200: s.InterventionDetailSerializer, **api_errors(404)})  # fmt: skip
    def get(self, request, pk):
        return _shown(request, pk)


class _Act(generics.GenericAPIView):
    queryset = Intervention.objects.none()
    serializer_class = s.InterventionDetailSerializer


class ClaimView(_Act):
    @extend_schema(summary="Claim it: it is yours until released or resolved", request=None,
                   responses={200: s.InterventionDetailSerializer,
                              **api_errors(403, 404, 409)})  # fmt: skip
    def post(self, request, pk):
        _actionable(request, pk)
        services.intervention_claim(intervention_id=pk, user=request.user)
        return _shown(request, pk)


class ReleaseView(_Act):
    @extend_schema(summary="Give a claimed intervention back to the queue", request=None,
                   responses={200: s.InterventionDetailSerializer,
                              **api_errors(403, 404, 409)})  # fmt: skip
    def post(self, request, pk):
        _actionable(request, pk)
        services.intervention_release(intervention_id=pk, user=request.user)
        return _shown(request, pk)


class ResolveView(_Act):
    @extend_schema(
        summary="Answer it; the run goes on from its step at once",
        description="`decision` as the type takes: approval and review approve/reject, input "
        "submit (with `data` fitting the form), correction confirm/edit (with `output`), "
        "escalation retry/skip/abort/override (with `output`).",
        request=s.ResolveInput,
        responses={200: s.InterventionDetailSerializer, **api_errors(400, 403, 404, 409)},
    )
    def post(self, request, pk):
        _actionable(request, pk)
        answer = parsed(s.ResolveInput, request.data)
        services.intervention_resolve(intervention_id=pk, user=request.user, **answer)
        return _shown(request, pk)


class DelegateView(_Act):
    @extend_schema(summary="Make another user its assignee", request=s.DelegateInput,
                   responses={200: s.InterventionDetailSerializer,
                              **api_errors(400, 403, 404, 409)})  # fmt: skip
    def post(self, request, pk):
        _actionable(request, pk)
        to = parsed(s.DelegateInput, request.data)["to"]
        services.intervention_delegate(intervention_id=pk, user=request.user, to=to)
        return _shown(request, pk)


class CommentView(_Act):
    @extend_schema(summary="Comment on it (anyone who can see it)", request=s.CommentInput,
                   responses={200: s.InterventionDetailSerializer,
                              **api_errors(400, 404)})  # fmt: skip
    def post(self, request, pk):
        intervention = _visible(request, pk)
        text = parsed(s.CommentInput, request.data)["text"]
        services.intervention_comment(intervention=intervention, user=request.user, text=text)
        return _shown(request, pk)
