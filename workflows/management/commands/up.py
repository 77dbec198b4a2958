"""Run the whole product in one process: migrate, load examples, demo users, worker, beat, web."""

import socket
import threading
from pathlib import Path

import uvicorn
from celery.beat import EmbeddedService
from django.conf import settings
from django.core.management import BaseCommand, CommandError, call_command

from accounts.services import demo_users_ensure
from config.celery import app as celery_app

PASSWORDS_FILE = "demo-passwords.json"


def _listen(host: str, port: int) -> socket.socket:
    """Bind the server's address now, or refuse to start (it is in use: Chameleon runs there)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        raise CommandError(
            f"{host}:{port} is in use ({exc.strerror}): is Chameleon already running there? "
            "Nothing was changed; pass --port to run another."
        ) from None
    listening.listen(2048)
    return listening


class Command(BaseCommand):
    help = "Set up and serve Chameleon on this machine (embedded defaults need no services)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--examples", default=str(settings.BASE_DIR / "examples"))
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="Do not run a Celery worker and beat in this process (run them separately).",
        )

    def handle(self, *args, host, port, examples, no_worker, **options):
        # First, before anything is touched: a second `up` on the same address stops here.
        listening = _listen(host, port)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command(
            "load_workflows", examples, "--missing-only", stdout=self.stdout, stderr=self.stderr
        )
        if settings.EMBEDDED:
            database = Path(settings.DATABASES["default"]["NAME"])
            credentials = demo_users_ensure(passwords_file=database.with_name(PASSWORDS_FILE))
            self.stdout.write(f"Demo users (passwords kept in {PASSWORDS_FILE} beside the db):")
            for username, password in credentials.items():
                self.stdout.write(f"  {username:<9} {password}")
        else:  # a real database: its accounts are not ours to make
            self.stdout.write("No demo users on an external database: `manage.py createsuperuser`.")
        if not no_worker:
            self._start_worker_and_beat()
        base = f"http://{host}:{port}"
        self.stdout.write(
            f"Chameleon: dashboard {base}/login/  admin {base}/admin/  API docs {base}/api/docs/"
        )
        config = uvicorn.Config("config.asgi:application", log_level="info")
        uvicorn.Server(config).run(sockets=[listening])

    def _start_worker_and_beat(self) -> None:
        # With the in-memory broker only a worker in this process can see the queue; SQLite
        # serializes writers anyway, so one solo worker thread is the honest concurrency.
        embedded = settings.CELERY_BROKER_URL.startswith("memory://")
        worker = celery_app.WorkController(
            hostname=f"embedded@{socket.gethostname()}",
            pool_cls="solo" if embedded else "threads",
            concurrency=1 if embedded else 4,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        threading.Thread(target=worker.start, name="celery-worker", daemon=True).start()
        # EmbeddedService's own default is the file-based PersistentScheduler: name ours, so the
        # schedules operators keep in the admin (django-celery-beat's rows) fire here too.
        scheduler = celery_app.conf.beat_scheduler
        EmbeddedService(celery_app, thread=True, scheduler_cls=scheduler).start()
        self.stdout.write("Worker and beat running in this process.")
