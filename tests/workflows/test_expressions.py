import pytest

from workflows.expressions import ExpressionError, evaluate, references, render


def test_a_lone_expression_keeps_its_native_type():
    context = {"inputs": {"items": [1, 2], "n": 3}}
    assert render("{{ inputs.items }}", context) == [1, 2]
    assert render({"a": ["{{ inputs.n * 2 }}"]}, context) == {"a": [6]}
    assert render("n={{ inputs.n }}", context) == "n=3"


def test_a_missing_key_is_an_error_not_an_empty_string():
    with pytest.raises(ExpressionError, match="score"):
        render("{{ steps.risk.output.score }}", {"steps": {"risk": {"output": {}}}})


def test_the_sandbox_refuses_python_internals():
    with pytest.raises(ExpressionError):
        evaluate("().__class__.__bases__[0].__subclasses__()", {})
    with pytest.raises(ExpressionError):
        render("{{ inputs.__class__.__mro__ }}", {"inputs": {}})


def test_rendered_output_is_bounded(settings):
    settings.CHAMELEON = {**settings.CHAMELEON, "TEMPLATE_MAX_CHARS": 100}
    with pytest.raises(ExpressionError, match="over the limit of 100"):
        render("{{ inputs.s ~ inputs.s }}", {"inputs": {"s": "x" * 60}})


def test_references_name_the_roots_and_attributes_read():
    found = references("{{ steps.a.output }} {{ inputs['doc'] }} {{ item }}")
    assert found == {("steps", "a"), ("inputs", "doc"), ("item", None)}


@pytest.mark.parametrize("source", ["'a' * 200000000", "[0] * 10 ** 8", "2 ** 100000"])
def test_repetition_and_powers_are_refused_before_they_run(source):
    with pytest.raises(ExpressionError, match="over"):
        evaluate(source, {})
