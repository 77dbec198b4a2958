"""`manage.py up` on embedded defaults: SQLite, in-memory broker, in-process worker and beat."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_up_serves_the_product_with_its_own_worker_on_embedded_defaults(tmp_path):
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "up did not become ready"
            assert server.poll() is None, server.stdout.read()
            time.sleep(0.5)
        # The engine on SQLite: triage-ticket runs a join and a sub-workflow, here executed
        # inline by run_workflow (the in-memory broker is the server's own).
        ran = subprocess.run(
            [sys.executable, "manage.py", "run_workflow", "triage-ticket", "--wait"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "COMPLETED" in ran.stdout

    assert body["checks"]["worker"]["ok"] and body["checks"]["worker"]["workers"]
    assert "created triage-ticket v1" in output
    for role in ("admin", "operator", "pilot", "viewer", "service"):
        assert f"\n  {role}" in output
