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


def test_production_refuses_to_sign_tokens_with_the_secret_key():
    key = secrets.token_urlsafe(50)
    result = manage_production("check", DJANGO_ENV_FILE="/dev/null", **{
        **SECRETS, "DJANGO_SECRET_KEY": key, "DJANGO_JWT_SIGNING_KEY": key})  # fmt: skip
    assert result.returncode != 0
    assert "DJANGO_JWT_SIGNING_KEY must differ from DJANGO_SECRET_KEY" in result.stderr
