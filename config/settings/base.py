"""Settings read from the environment, with embedded defaults that run everything in one process.

With nothing set: SQLite file, in-memory broker and channel layer, the `simulated` provider.
With DATABASE_URL and REDIS_URL: PostgreSQL and Redis, workers as separate processes.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A .env file at the root fills in what the environment leaves unset; DJANGO_ENV_FILE names
# another (e.g. /dev/null to read none).
environ.Env.read_env(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env(
    "DJANGO_SECRET_KEY", default="insecure-embedded-default-key-change-me-in-production"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "channels",
    "django_celery_beat",
    "django_prometheus",
    "axes",
    "accounts",
    "workflows",
    "agents",
    "guardians",
    "interventions",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.api.ApiErrorsMiddleware",
    "accounts.audit.AuditRequestMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as axes asks: it turns a sign-in page's refused attempt into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db(
        "DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions serialize writers up front instead of failing on lock upgrade,
    # which is what lets the in-process worker, beat and web threads share one file.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
EMBEDDED = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"

# DATABASE_POOLER=transaction: PostgreSQL is reached through a pooler in transaction mode
# (PgBouncer's pool_mode=transaction), where consecutive transactions of one connection may run
# in different server sessions, so nothing may outlive a transaction in the session.
DATABASE_POOLER = env.str("DATABASE_POOLER", default="")
if DATABASE_POOLER not in ("", "transaction"):
    raise ImproperlyConfigured(
        f"DATABASE_POOLER must be empty or 'transaction', not {DATABASE_POOLER!r}"
    )
if DATABASE_POOLER == "transaction":
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_POOLER=transaction needs a postgres:// DATABASE_URL")
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        # psycopg's own prepared statements off (a statement prepared in one server session is
        # missing from the next), and client-side binding, under which psycopg prepares nothing.
        "prepare_threshold": None,
        "server_side_binding": False,
    }
    # QuerySet.iterator() outside atomic() would hold a cursor open across transactions.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out sign-in outright
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Sign-in lockout (django-axes) on the API's token view, the dashboard's and the admin's sign-in:
# AXES_FAILURE_LIMIT wrong passwords for one username from one address lock that pair out for
# AXES_COOLOFF_MINUTES (429), the right password included; each attempt while locked out starts
# the cool-off again, and a success clears the count. And AXES_USERNAME_FAILURE_LIMIT failures
# for one username from any addresses in a clock hour lock the username out until the hour ends
# (accounts.lockout.AxesHandler). The sign-in pages' POSTs share the token views' `auth` rate.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_USERNAME_FAILURE_LIMIT = env.int("AXES_USERNAME_FAILURE_LIMIT", default=20)
AXES_HANDLER = "accounts.lockout.AxesHandler"
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # a row per successful sign-in, forever; failures are kept
AXES_CLIENT_IP_CALLABLE = "config.throttles.client_address"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_page"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/login/"

REDIS_URL = env("REDIS_URL", default="")

# prometheus_client multiprocess mode: when set, every process on this host (web, each worker
# pool process) writes its metrics under this directory and /metrics reports their sum, so
# what workers measure reaches the scrape. prometheus_client reads the variable itself.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")
# The bearer token Prometheus scrapes /metrics with; without one only staff sessions see it.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

if REDIS_URL:
    # Pub/sub: a group send is one PUBLISH (the core layer makes several round trips per group).
    # Live events are best effort by design; a client that missed some reads them from the API.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # Pub/sub channels are shared by every database of a Redis: the prefix keeps two
            # installations on one Redis (say, tests and a dev server) out of each other's feeds.
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"chameleon{urlparse(REDIS_URL).path}"},
        }
    }
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery. Durable state lives in the database; the broker only carries "execute step run <id>".
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env.float("CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT", default=10.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection around every task unless told to reuse
# it: 5-8 ms of reconnecting per step here (bench/). Health checks drop a broken one instead.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# Longer than any step may run (step timeouts are capped at MAX_STEP_TIMEOUT_S), so Redis never
# redelivers a message whose task is still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 2 * 3600,
    # Only polling transports (the in-memory one) use this; Redis blocks on BRPOP instead.
    "polling_interval": 0.02,
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "steps-dispatch-due": {"task": "workflows.steps_dispatch_due", "schedule": 1.0},
    "steps-recover-expired": {"task": "workflows.steps_recover_expired", "schedule": 5.0},
    "interventions-sweep": {"task": "interventions.sweep", "schedule": 1.0},
}

# Hosts, addresses or CIDRs the http.* tools may call although they are not public (loopback,
# private, link-local): none by default (workflows.tools.outbound).
HTTP_TOOLS_ALLOWED_HOSTS = env.list("HTTP_TOOLS_ALLOWED_HOSTS", default=[])

# Email (intervention notifications): Django's backend, console by default.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="chameleon@localhost")
# Where people reach this server: the links in notifications.
PUBLIC_URL = env("PUBLIC_URL", default="http://localhost:8000")
# An intervention's breach warning goes out this long before its due time (or once 80% of the
# time to it has passed, if that is later).
INTERVENTIONS_BREACH_LEAD_S = env.int("INTERVENTIONS_BREACH_LEAD_S", default=600)

# Engine bounds.
CHAMELEON = {
    "MAX_STEP_TIMEOUT_S": 3600,
    "LEASE_GRACE_S": env.int("CHAMELEON_LEASE_GRACE_S", default=30),
    "REDISPATCH_AFTER_S": env.int("CHAMELEON_REDISPATCH_AFTER_S", default=60),
    "TEMPLATE_MAX_CHARS": 64_000,
    # Leased executions (outside calls) each worker process keeps in flight, and the threads
    # that record their outcomes (each holds one database connection).
    "CALLS_IN_FLIGHT": env.int("CHAMELEON_CALLS_IN_FLIGHT", default=200),
    "RECORDERS": env.int("CHAMELEON_RECORDERS", default=2),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.tokens.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    # JSON only: a form-encoded body is a 415, not a request run with defaults.
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttles.UserRateThrottle",
        "config.throttles.AnonRateThrottle",
        "config.throttles.ScopedRateThrottle",
        "config.throttles.GlobalRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env("API_THROTTLE_USER", default="6000/min"),  # each signed-in user
        "anon": env("API_THROTTLE_ANON", default="60/min"),  # each address, signed out
        "auth": env("API_THROTTLE_AUTH", default="30/min"),  # sign-ins, each address
        "global": env("API_THROTTLE_GLOBAL", default="60000/min"),  # everyone together
    },
    # The client address throttles and lockouts count by: REMOTE_ADDR with 0 (a client could
    # write any X-Forwarded-For); behind N proxies that each append to it, its Nth entry from
    # the right, the address the outermost proxy saw.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=50)  # cursor pages; ?page_size= up to 500

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=5)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "AUDIENCE": env("JWT_AUDIENCE", default="chameleon-api"),
    "ISSUER": env("JWT_ISSUER", default="chameleon"),
    "SIGNING_KEY": env("DJANGO_JWT_SIGNING_KEY", default=SECRET_KEY),
    # Tokens carry a hash of the password hash: a changed password ends them (accounts.tokens).
    "CHECK_REVOKE_TOKEN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Chameleon API",
    "DESCRIPTION": "Run AI-agent workflows under human governance.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "workflows.models.RunStatus",
        "StepStatusEnum": "workflows.models.StepStatus",
        "GuardianOutcomeEnum": "guardians.models.Outcome",
        "GuardianOnErrorEnum": "guardians.models.OnError",
        "InterventionStatusEnum": "interventions.models.Status",
        "InterventionTypeEnum": "interventions.models.InterventionType",
    },
    # Swagger UI's assets come from static/ (drf-spectacular-sidecar), never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# /readyz: how long each dependency may take to answer, and whether a live worker is required.
READYZ_TIMEOUT_S = env.float("READYZ_TIMEOUT_S", default=1.0)
READYZ_REQUIRE_WORKER = env.bool("READYZ_REQUIRE_WORKER", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # One line per task and per beat tick (every second) drowns everything else.
    "loggers": {
        name: {"level": env("CELERY_TASK_LOG_LEVEL", default="WARNING")}
        for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat")
    },
}
