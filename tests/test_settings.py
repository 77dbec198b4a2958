"""Production settings: `check --deploy` is clean, and missing secrets stop the start."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage_production(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py with production settings and only the DJANGO_* variables given here
    (a variable given as None is removed from the environment)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings.production")
    clean = {key: value for key, value in clean.items() if value is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_deploy_check_is_clean():
    result = manage_production(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_JWT_SIGNING_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr


SECRETS = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_JWT_SIGNING_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "example.com",
}


@pytest.mark.parametrize(
    ("missing", "given"),
    [
        *(
            (name, {key: value for key, value in SECRETS.items() if key != name})
            for name in SECRETS
        ),
        *((name, {name: None, **SECRETS}) for name in ("DATABASE_URL", "REDIS_URL")),
    ],
)
def test_production_refuses_to_start_without(missing, given):
    # DJANGO_ENV_FILE=/dev/null: a developer's .env must not supply what is being left out.
    result = manage_production("check", DJANGO_ENV_FILE="/dev/null", **given)
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_limits_lockouts_proxies_and_token_claims_come_from_the_environment():
    show = (
        "from django.conf import settings as s; r = s.REST_FRAMEWORK; j = s.SIMPLE_JWT; "
        "print(s.AXES_FAILURE_LIMIT, s.AXES_USERNAME_FAILURE_LIMIT, "
        "s.AXES_COOLOFF_TIME.total_seconds(), r['NUM_PROXIES'], "
        "r['DEFAULT_THROTTLE_RATES']['global'], r['DEFAULT_THROTTLE_RATES']['auth'], "
        "j['AUDIENCE'], j['ISSUER'])"
    )
    env = {"AXES_FAILURE_LIMIT": "7", "AXES_USERNAME_FAILURE_LIMIT": "13",
           "AXES_COOLOFF_MINUTES": "2.5", "NUM_PROXIES": "2",
           "API_THROTTLE_GLOBAL": "9/s", "API_THROTTLE_AUTH": "8/min", "JWT_AUDIENCE": "aud-x",
           "JWT_ISSUER": "iss-x", "DJANGO_SETTINGS_MODULE": "config.settings.base",
           "DJANGO_ENV_FILE": "/dev/null"}  # fmt: skip
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", show], cwd=ROOT,
                            env={**os.environ, **env}, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "7 13 150.0 2 9/s 8/min aud-x iss-x"


def test_production_refuses_to_sign_tokens_with_the_secret_key():
    key = secrets.token_urlsafe(50)
    result = manage_production("check", DJANGO_ENV_FILE="/dev/null", **{
        **SECRETS, "DJANGO_SECRET_KEY": key, "DJANGO_JWT_SIGNING_KEY": key})  # fmt: skip
    assert result.returncode != 0
    assert "DJANGO_JWT_SIGNING_KEY must differ from DJANGO_SECRET_KEY" in result.stderr
