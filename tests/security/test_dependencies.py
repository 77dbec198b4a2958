"""No locked dependency has a known vulnerability: pip-audit over every package in uv.lock.

pip-audit asks a vulnerability service (PyPI's JSON API by default, or OSV: set
PIP_AUDIT_SERVICE=osv). Where no service answers (a machine that reaches only a package mirror,
whose JSON API carries no per-release data), nothing was audited: the test says so and is
skipped rather than failed, and the summary line says it too.
"""

import json
import os
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import ROOT


def _locked_requirements() -> list[str]:
    """`name==version` for every package uv.lock pins (all platforms: auditing one a platform
    never installs costs nothing), the project itself left out."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return [
        f"{package['name']}=={package['version']}"
        for package in lock["package"]
        if "registry" in package.get("source", {})
    ]


def test_no_locked_dependency_has_a_known_vulnerability(tmp_path, security_figure):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(_locked_requirements()) + "\n")
    service = os.environ.get("PIP_AUDIT_SERVICE", "pypi")
    options = ["--disable-pip", "--no-deps", "--format", "json", "--progress-spinner", "off"]
    command = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "-s", service, *options]

    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    try:
        report = json.loads(result.stdout)["dependencies"]
        unanswered = all("skip_reason" in dependency for dependency in report)
        why = report[0]["skip_reason"] if report and unanswered else ""
    except (json.JSONDecodeError, KeyError):
        unanswered, why = True, (result.stderr.strip().splitlines() or ["no report"])[-1]
    if unanswered:
        security_figure(
            f"pip-audit: NOT RUN, the {service} vulnerability service did not answer ({why[:200]})"
        )
        pytest.skip(f"pip-audit: no vulnerability service answered ({service})")
    vulnerable = {
        f"{d['name']} {d['version']}": [v["id"] for v in d["vulns"]]
        for d in report
        if d.get("vulns")
    }
    audited = [d for d in report if "skip_reason" not in d]
    skipped = sorted(d["name"] for d in report if "skip_reason" in d)
    security_figure(f"pip-audit ({service}): {len(audited)} packages audited, "
                    f"{len(vulnerable)} vulnerable, not audited: {skipped or 'none'}")  # fmt: skip
    assert not vulnerable, vulnerable
