"""`load_workflows DIR` loads DIR/providers and DIR/agents before the workflows that use them."""

import pytest
from django.core.management import CommandError, call_command

from agents.models import Agent, Provider

pytestmark = pytest.mark.django_db


def _write(root, name: str, text: str):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_providers_and_agents_load_in_order_and_then_the_workflow(tmp_path, operator, capsys):
    _write(tmp_path, "providers/sim.yaml", "slug: sim\nkind: simulated\n")
    # a-first falls back to z-last: z-last must load first
    chain = "prompt: hi\nchain: [{provider: sim, model: m}]\n"
    _write(tmp_path, "agents/a-first.yaml", f"slug: a-first\n{chain}fallback_agent: z-last\n")
    _write(
        tmp_path,
        "agents/z-last.yaml",
        "slug: z-last\nprompt: hi\nchain: [{provider: sim, model: m}]\n",
    )
    _write(tmp_path, "flow.yaml", "slug: flow\nsteps: [{id: ask, agent: a-first}]\n")

    call_command("load_workflows", str(tmp_path), "--owner", operator.username)
    call_command("load_workflows", str(tmp_path), "--owner", operator.username, "--missing-only")

    out = capsys.readouterr().out
    assert "created sim" in out and "created z-last v1" in out and "created flow v1" in out
    assert "kept a-first v1" in out
    assert Agent.objects.get(slug="a-first").current_version.spec["fallback_agent"] == "z-last"


def test_an_invalid_definition_file_is_reported_with_its_paths_and_the_others_load(
    tmp_path, operator, capsys
):
    _write(tmp_path, "providers/bad.yaml", "slug: bad\nkind: openai\ntimeout_s: -1\n")
    _write(tmp_path, "providers/sim.yaml", "slug: sim\nkind: simulated\n")

    with pytest.raises(CommandError, match="1 of 2"):
        call_command("load_workflows", str(tmp_path), "--owner", operator.username)

    err = capsys.readouterr().err
    assert "providers/bad.yaml: invalid" in err and "timeout_s:" in err
    assert list(Provider.objects.values_list("slug", flat=True)) == ["sim"]
