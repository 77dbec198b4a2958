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


METRICS_TOKEN = "up-test-metrics-token"  # /readyz shows its checks to the metrics token


def _get(url: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _embedded_env(tmp_path) -> dict:
    """This environment without the services the tests use: the embedded defaults, on a SQLite
    file of the test's own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env["METRICS_TOKEN"] = METRICS_TOKEN
    return env


def test_up_serves_the_product_with_its_own_worker_on_embedded_defaults(tmp_path):
    port = _free_port()
    env = _embedded_env(tmp_path)
    server, lines = _up(env, port)
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
        output = "\n".join(lines) + "\n" + server.communicate(timeout=30)[0]

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "COMPLETED" in ran.stdout

    assert body["checks"]["worker"]["ok"] and body["checks"]["worker"]["workers"]
    assert "created triage-ticket v1" in output
    for role in ("admin", "operator", "pilot", "viewer", "service"):
        assert f"\n  {role}" in output


def _up(env, port) -> tuple[subprocess.Popen, list[str]]:
    """Start `manage.py up` and read its output until it serves; return (process, lines)."""
    server = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in server.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("Chameleon: "):
            return server, lines
    raise AssertionError("up exited:\n" + "\n".join(lines))


def _token(port, password) -> str | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/auth/token/",
        data=json.dumps({"username": "operator", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.load(response)["access"]
        except urllib.error.HTTPError as error:
            if error.code == 401:
                return None
            raise
        except OSError:  # not serving yet
            assert time.monotonic() < deadline
            time.sleep(0.3)


def _password(lines) -> str:
    return next(line.split()[1] for line in lines if line.startswith("  operator "))


def test_a_second_up_refuses_at_once_and_a_restart_keeps_passwords_and_newer_versions(tmp_path):
    env = _embedded_env(tmp_path)
    port = _free_port()
    first, lines = _up(env, port)
    try:
        password = _password(lines)
        token = _token(port, password)
        newer = "slug: format-reply\nsteps:\n  - id: only\n    tool: noop\n"
        publish = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/workflows/format-reply/versions/",
            data=json.dumps({"spec": newer}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(publish, timeout=10) as response:
            assert json.load(response)["number"] == 2

        second = subprocess.run(
            [sys.executable, "manage.py", "up", "--port", str(port)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

        assert second.returncode != 0
        assert "is in use" in second.stderr and "Nothing was changed" in second.stderr
        assert _token(port, password) is not None  # the running instance's password holds
    finally:
        first.terminate()
        first.communicate(timeout=30)

    again, lines = _up(env, _free_port())
    again.terminate()
    output = "\n".join(lines) + again.communicate(timeout=30)[0]
    assert _password(lines) == password
    assert "kept format-reply v2" in output
