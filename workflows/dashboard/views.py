from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def runs(request):
    return render(request, "dashboard/base.html")


@login_required
def run(request, run_id):
    return render(request, "dashboard/base.html")


@login_required
def overview(request):
    return render(request, "dashboard/base.html")
