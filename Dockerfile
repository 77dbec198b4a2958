# syntax=docker/dockerfile:1
# One image for web, worker and beat; they differ only by command (see docker-compose.yml):
#   web (default)  uvicorn config.asgi:application --host 0.0.0.0 --port 8000
#   worker         celery -A config worker --loglevel INFO
#   beat           celery -A config beat --loglevel INFO
# Runs with config.settings.production: DJANGO_SECRET_KEY, DJANGO_JWT_SIGNING_KEY and
# DJANGO_ALLOWED_HOSTS are required,
# DATABASE_URL and REDIS_URL select PostgreSQL and Redis.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production
RUN groupadd --system --gid 10001 chameleon \
    && useradd --system --uid 10001 --gid chameleon --home-dir /app --no-create-home chameleon
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY . .
# Static files are collected at build time and served by WhiteNoise; the key and URLs are
# build-time dummies (collectstatic connects to neither).
RUN DJANGO_SECRET_KEY=collectstatic-build-only DJANGO_JWT_SIGNING_KEY=collectstatic-jwt-only \
    DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput \
    && python -m compileall -q . \
    && install -d -o chameleon -g chameleon /var/run/chameleon-metrics
USER chameleon
EXPOSE 8000
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
