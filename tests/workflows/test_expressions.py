import time

import pytest

from workflows import expressions
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


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% for i in range(100000) %}{% for j in inputs.xs %}{% endfor %}{% endfor %}x",
        "{{ range(100000) | map('string') | list | length }}{% for i in range(99999) %}"
        "{% for j in range(9) %}{% endfor %}{% endfor %}",
    ],
)
def test_loops_inside_loops_stop_after_a_bounded_amount_of_work(source):
    with pytest.raises(ExpressionError, match="steps of work"):
        render(source, {"inputs": {"xs": list(range(50_000))}})


def test_a_native_value_is_measured_as_it_would_be_stored():
    with pytest.raises(ExpressionError, match="characters and items"):
        evaluate("[[0] * 60000] * 60000", {})


def test_ordinary_templates_and_big_inputs_passed_through_still_work():
    context = {"inputs": {"rows": [{"n": n} for n in range(20_000)]}}
    assert len(render("{{ inputs.rows }}", context)) == 20_000
    assert render("{% for r in inputs.rows[:3] %}{{ r.n }},{% endfor %}", context) == "0,1,2,"


@pytest.mark.parametrize(
    "source",
    [
        "((((10 ** 100) ** 100) ** 100) ** 100) > 1",
        "'{:>300000000}'.format(1) | length",
        "'%300000000s' % 1",
        "'x'.center(300000000)",
        "('x' * 60000).replace('x', 'x' * 60000) | length",
        "'x' | replace('x', 'y' * 100000)",
    ],
)
def test_what_c_code_would_build_too_big_is_refused_before_it_runs(source):
    with pytest.raises(ExpressionError):
        evaluate(source, {})


@pytest.mark.parametrize("source", ["lipsum(20000)", "'x' | center(300000000)"])
def test_helpers_that_build_text_of_any_size_are_not_there(source):
    with pytest.raises(ExpressionError):
        evaluate(source, {})


def test_bounded_text_helpers_still_work():
    assert evaluate("'a-b' | replace('-', '+')", {}) == "a+b"
    assert evaluate("'7'.zfill(3)", {}) == "007"
    assert evaluate("2 ** 10 + 7 % 3", {}) == 1025


@pytest.mark.parametrize(
    "source",
    [
        # each repetition passes its own check; the filters then walk 64000 x 64000 items
        "([['a' * 64000] * 64000] * 4) | map('map', 'upper') | map('map', 'length')"
        " | map('sum') | sum",
        "range(90000) | map('string') | map('length') | sum",
    ],
)
def test_an_expression_whose_filters_run_away_is_stopped(source):
    started = time.monotonic()

    with pytest.raises(expressions.ExpressionError, match="steps of work"):
        expressions.evaluate(source, {})

    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "source",
    ["range(100000) | join('a' * 64000) | length", "('a' * 64000).join(range(100000)) | length"],
)
def test_joining_past_the_size_limit_is_refused_before_it_is_built(source):
    with pytest.raises(expressions.ExpressionError, match="joining would make"):
        expressions.evaluate(source, {})


def test_an_expression_without_calls_is_not_traced_and_still_answers():
    context = {"steps": {"risk": {"output": {"score": 0.4}}}}

    assert expressions._calls_anything("steps.risk.output.score < 0.7") is False
    assert expressions.evaluate("steps.risk.output.score < 0.7", context) is True
    assert expressions._calls_anything("inputs.names | length > 2") is True
