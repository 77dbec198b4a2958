"""The pilot's pages: the queue (/dashboard/) and one intervention. Both render from the database;
their live parts (`?part=`) reload when the page's socket reports a change. Acts call the same
services as the API, so audit entries, run events and conflicts are the API's."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.sessions import dashboard_login_required
from config.errors import Conflict, InvalidInput, NotFound
from interventions import selectors, services
from interventions.api.serializers import CommentInput, DelegateInput, QueueQuery, ResolveInput
from interventions.dashboard import pages
from interventions.dashboard.answers import answer_form, answer_posted

DONE = {"claim": "Claimed: it is yours until you release or answer it.",
        "release": "Released back to the queue.", "delegate": "Delegated.",
        "comment": "Comment added.", "resolve": "Answer recorded."}  # fmt: skip


@dashboard_login_required
def queue(request):
    query = QueueQuery(data=request.GET)
    valid = query.is_valid()
    filters = query.validated_data if valid else {}
    context = pages.queue_context(
        user=request.user, type=filters.get("type"), group=filters.get("group"),
        assignee_me=filters.get("assignee") == "me",
    )  # fmt: skip
    context["filters"] = filters
    context["part_url"] = _with_part(request, "table")
    if request.GET.get("part") == "table":
        return render(request, "dashboard/_queue_table.html", context)
    context.update(pages.queue_filter_choices(user=request.user), bad_filter=not valid)
    return render(request, "dashboard/queue.html", context)


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def intervention(request, intervention_id):
    try:
        item = selectors.intervention_get_visible(
            user=request.user, intervention_id=intervention_id
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if request.method == "POST":
        return _act(request, item)
    part = request.GET.get("part")
    if part == "body":
        return _render(request, item, template="dashboard/_intervention_body.html")
    if part == "run":
        return render(request, "dashboard/_intervention_run.html",
                      pages.run_context(user=request.user, intervention=item))  # fmt: skip
    return _render(request, item)


def _act(request, item):
    """Do the POSTed act; on success redirect back to the page, else show the page again with
    what went wrong: the fields' errors, or the notice that it changed meanwhile."""
    act, user, posted = request.POST.get("act"), request.user, request.POST
    if act not in DONE:
        return _render(request, item, notice="Nothing was done: no such act.", status=400)
    if act != "comment" and not selectors.may_act(user, item):
        return _render(request, item, notice="You may not act on this intervention.", status=403)
    try:
        _perform(act, item=item, user=user, posted=posted)
    except InvalidInput as exc:
        kept = posted if act == "resolve" else None  # the answer is shown again, to fix
        errors = exc.details or {"": exc.message}
        return _render(request, item, errors=errors, posted=kept, act=act, status=400)
    except Conflict as exc:
        fresh = selectors.intervention_get_visible(user=user, intervention_id=item.pk)
        return _render(request, fresh, stale=exc.message, status=409)
    messages.success(request, DONE[act])
    return redirect("dashboard:intervention", intervention_id=item.pk)


def _perform(act: str, *, item, user, posted) -> None:
    """Call the act's service, the API's, with what the page's form says, read through the
    API's input definitions (so the page has the API's limits)."""
    if act == "resolve":
        answer, errors = answer_posted(item, posted)
        if errors:  # not even JSON, or an edit confirming would drop: nothing is sent
            raise InvalidInput("The answer cannot be sent as it is.", details=errors)
        answer = _input(ResolveInput, {k: v for k, v in answer.items() if v is not None})
        services.intervention_resolve(intervention_id=item.pk, user=user, **answer)
    elif act == "claim":
        services.intervention_claim(intervention_id=item.pk, user=user)
    elif act == "release":
        services.intervention_release(intervention_id=item.pk, user=user)
    elif act == "delegate":
        to = _input(DelegateInput, {"to": posted.get("to", "").strip()})["to"]
        services.intervention_delegate(intervention_id=item.pk, user=user, to=to)
    else:
        text = posted.get("text", "").strip()
        if not text:
            raise InvalidInput("Write the comment first.", details={"text": "Write it first."})
        text = _input(CommentInput, {"text": text})["text"]
        services.intervention_comment(intervention=item, user=user, text=text)


def _input(definition, data) -> dict:
    """`data` as the API's input `definition` takes it; InvalidInput naming each wrong field."""
    serializer = definition(data=data)
    if serializer.is_valid():
        return serializer.validated_data
    errors = {field: " ".join(map(str, messages)) for field, messages in serializer.errors.items()}
    raise InvalidInput("The answer does not fit its fields.", details=errors)


def _render(request, item, *, template="dashboard/intervention.html", errors=None, posted=None,
            act=None, notice="", stale="", status=200):  # fmt: skip
    context = pages.intervention_context(user=request.user, intervention=item)
    answering = errors if act == "resolve" else None
    context["form"] = answer_form(item, posted, answering)
    context.update(notice=notice, stale=stale, act=act,
                   act_errors={} if act == "resolve" else (errors or {}))  # fmt: skip
    if template == "dashboard/intervention.html":
        context.update(pages.run_context(user=request.user, intervention=item))
        context["body_url"] = f"{request.path}?part=body"
        context["run_url"] = f"{request.path}?part=run"
    return render(request, template, context, status=status)


def _with_part(request, part: str) -> str:
    query = request.GET.copy()
    query["part"] = part
    return f"{request.path}?{query.urlencode()}"
