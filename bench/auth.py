"""What the sign-in and token checks cost a request, measured in one invocation.

    .venv/bin/python bench/auth.py [--requests 500]

In this process through Django's test client (the middleware, the view, no network), on the
bench database and Redis (bench/run.py), PBKDF2 as in production:
(a) GET /api/workflows/ with a sign-in's access token (the user loaded, its revoke claim
    compared, its sign-in looked up in Redis) vs a token minted without a sign-in (no Redis
    look-up): p50/p99 and the ratio of medians.
(b) POST /api/auth/token/ (the right password) with the lockout (django-axes: its look-up of
    failures, clearing them on success) vs without it: p50/p99 and the ratio of medians.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench import run  # noqa: E402  (sets the bench environment up and calls django.setup())

# isort: split
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.test import override_settings  # noqa: E402
from rest_framework import throttling  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

HIGH = "100000000/min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()

    run.database_prepare()
    throttling.SimpleRateThrottle.THROTTLE_RATES = dict.fromkeys(
        ("user", "anon", "auth", "global"), HIGH
    )
    user = get_user_model().objects.get_or_create(username="bench-auth")[0]
    user.set_password("bench-password")
    user.save()
    credentials = {"username": user.username, "password": "bench-password"}
    signed_in = APIClient().post("/api/auth/token/", credentials, format="json").json()["access"]
    minted = str(RefreshToken.for_user(user).access_token)

    def api_get(token):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return lambda: client.get("/api/workflows/")

    def sign_in():
        return APIClient().post("/api/auth/token/", credentials, format="json")

    _compare(
        "(a) GET /api/workflows/",
        {"sign-in token": api_get(signed_in), "token minted without a sign-in": api_get(minted)},
        args.requests,
    )
    without_axes = [b for b in settings.AUTHENTICATION_BACKENDS if not b.startswith("axes.")]
    plain = override_settings(AXES_ENABLED=False, AUTHENTICATION_BACKENDS=without_axes)
    _compare(
        "(b) POST /api/auth/token/",
        {"with the lockout": sign_in, "without": plain(sign_in)},
        args.requests // 5,
    )


def _compare(title: str, calls: dict, n: int) -> None:
    """Time the calls in turn, n rounds, so drift on a shared machine hits each alike."""
    timings = {name: [] for name in calls}
    for call in calls.values():
        _timed(call, warm_up=10)
    for _ in range(n):
        for name, call in calls.items():
            timings[name].append(_timed(call))
    _report(title, timings)


def _timed(call, warm_up: int = 0) -> float:
    for _ in range(warm_up):  # connections, caches
        assert call().status_code == 200
    start = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, response.content
    return elapsed


def _report(title: str, timings: dict[str, list[float]]) -> None:
    print(title)
    medians = []
    for name, values in timings.items():
        values.sort()
        medians.append(statistics.median(values))
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"  {name:34} p50 {medians[-1]:7.2f} ms  p99 {p99:7.2f} ms  (n={len(values)})")
    print(f"  ratio of medians, first / second: {medians[0] / medians[1]:.2f}")


if __name__ == "__main__":
    main()
