"""`load_workflows DIR` loads DIR/guardians (composites after what they chain) before the
workflows that guard their steps with them."""

import pytest
from django.core.management import CommandError, call_command

from guardians.models import Guardian

pytestmark = pytest.mark.django_db


def _write(root, name: str, text: str):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_guardians_load_in_order_before_the_workflow_that_uses_them(tmp_path, operator, capsys):
    # a-chain chains z-point: z-point must load first
    _write(tmp_path, "guardians/a-chain.yaml",
           "slug: a-chain\nkind: COMPOSITE\nconfig: {guardians: [z-point]}\n")  # fmt: skip
    _write(tmp_path, "guardians/z-point.yaml", "slug: z-point\nkind: PASS_THRU\n")
    _write(tmp_path, "flow.yaml", "slug: flow\nsteps: [{id: a, tool: noop, guard: [a-chain]}]\n")

    call_command("load_workflows", str(tmp_path), "--owner", operator.username)
    _write(tmp_path, "guardians/z-point.yaml", "slug: z-point\nkind: PASS_THRU\nname: Point\n")
    call_command("load_workflows", str(tmp_path), "--owner", operator.username)

    out = capsys.readouterr().out
    assert "created z-point v1" in out and "created a-chain v1" in out and "created flow v1" in out
    assert "published z-point v2" in out and "unchanged a-chain v1" in out
    assert Guardian.objects.get(slug="z-point").current_version.number == 2


def test_an_invalid_guardian_file_is_reported_with_its_paths_and_the_others_load(
    tmp_path, operator, capsys
):
    _write(tmp_path, "guardians/bad.yaml", "slug: bad\nkind: TTL_CHECK\nconfig: {ttl_s: 0}\n")
    _write(tmp_path, "guardians/ok.yaml", "slug: ok\nkind: PASS_THRU\n")

    with pytest.raises(CommandError, match="1 of 2"):
        call_command("load_workflows", str(tmp_path), "--owner", operator.username)

    err = capsys.readouterr().err
    assert "guardians/bad.yaml: invalid" in err and "config.ttl_s:" in err
    assert list(Guardian.objects.values_list("slug", flat=True)) == ["ok"]
