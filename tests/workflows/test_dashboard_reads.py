"""The dashboard's modules read the database only through the apps' selectors (and the engine's
door): no ORM manager or related manager is queried in them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(
    [*ROOT.glob("interventions/dashboard/*.py"), *ROOT.glob("workflows/dashboard/*.py")]
)


def orm_reads(path: Path) -> list[str]:
    """Lines that reach a model manager (`X.objects`) or a related one (`x.comments.…`,
    `x.user_set`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and (
            node.attr == "objects" or node.attr.endswith("_set") or node.attr == "comments"
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    return found


def test_there_are_dashboard_modules_to_check():
    assert len(MODULES) > 10


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_a_dashboard_module_reads_through_selectors(path):
    assert orm_reads(path) == []
