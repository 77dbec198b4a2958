from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def queue(request):
    return render(request, "dashboard/base.html")


@login_required
def intervention(request, intervention_id):
    return render(request, "dashboard/base.html")
