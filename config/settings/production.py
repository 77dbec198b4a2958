"""Production: refuses to start without its secrets, secure cookies and HTTPS."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import SIMPLE_JWT, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
# No embedded defaults here: a SQLite file and an in-memory broker that no worker process sees
# would accept runs and never execute them. base.py has already configured both from these.
env("DATABASE_URL")
env("REDIS_URL")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
# API tokens are signed with a key of their own, so rotating it ends every token and nothing
# else (sessions, password reset links and the like stay signed with the secret key).
SIMPLE_JWT = {**SIMPLE_JWT, "SIGNING_KEY": env("DJANGO_JWT_SIGNING_KEY")}
if SIMPLE_JWT["SIGNING_KEY"] == SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_JWT_SIGNING_KEY must differ from DJANGO_SECRET_KEY")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
