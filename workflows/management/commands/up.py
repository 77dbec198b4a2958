"""Run the whole product in one process: migrate, load examples, demo users, worker, beat, web."""

import socket
import threading

import uvicorn
from celery.beat import EmbeddedService
from django.conf import settings
from django.core.management import BaseCommand, call_command

from accounts.services import demo_users_reset
from config.celery import app as celery_app


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
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command("load_workflows", examples, stdout=self.stdout, stderr=self.stderr)
        if settings.EMBEDDED:
            credentials = demo_users_reset()
            self.stdout.write("Demo users (new passwords on every start):")
            for username, password in credentials.items():
                self.stdout.write(f"  {username:<9} {password}")
        else:  # a real database: its accounts are not ours to reset
            self.stdout.write("No demo users on an external database: `manage.py createsuperuser`.")
        if not no_worker:
            self._start_worker_and_beat()
        base = f"http://{host}:{port}"
        self.stdout.write(f"Chameleon: {base}/admin/  API docs: {base}/api/docs/")
        uvicorn.run("config.asgi:application", host=host, port=port, log_level="info")

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
        EmbeddedService(celery_app, thread=True).start()
        self.stdout.write("Worker and beat running in this process.")
