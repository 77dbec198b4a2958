"""The one sandboxed mini-language for templates, `when`, `until` and `foreach` expressions.

Jinja2's SandboxedEnvironment with StrictUndefined: no Python eval, no attribute access to
internals, a missing key is an error rather than an empty string. A string that is exactly one
`{{ expression }}` evaluates to the expression's native value (a list stays a list); any other
string renders to text, bounded in size. What a template may do is bounded too: repetition and
powers are checked before they run, the lines its compiled code may run in one evaluation are
counted (a loop inside a loop cannot spin for minutes), and a native value it builds is measured
as it would be stored (`[[0] * 60000] * 60000` is small in memory, huge as JSON). A lone
expression has no loop to count (below), so it runs without the count, about three times faster.
"""

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.conf import settings
from jinja2 import StrictUndefined, TemplateError, Undefined, meta, nodes, pass_eval_context
from jinja2.filters import do_join
from jinja2.sandbox import SandboxedEnvironment


class _Sandbox(SandboxedEnvironment):
    # Checked before they run, since they run in C where no budget reaches: `'a' * 10**9`,
    # `9 ** 9 ** 9`, `(10 ** 100) ** 100 ** ...`, `'%300000000s' % 1` exhaust memory or CPU.
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise ExpressionError(f"exponent {right} is over the limit of {MAX_EXPONENT}")
        powers = operator == "**" and isinstance(left, int) and isinstance(right, int)
        if powers and right > 0 and abs(left).bit_length() * right > MAX_POWER_BITS:
            raise ExpressionError(f"{left} ** {right} is over {MAX_POWER_BITS} bits")
        if operator == "%" and isinstance(left, str):
            raise ExpressionError("formatting text with % is not allowed; use ~ to join text")
        if operator == "*":
            sized, count = (left, right) if isinstance(left, str | list | tuple) else (right, left)
            limit = settings.CHAMELEON["TEMPLATE_MAX_CHARS"]
            repeats = isinstance(sized, str | list | tuple) and isinstance(count, int)
            if repeats and len(sized) * count > limit:
                raise ExpressionError(f"repetition to {len(sized) * count} is over {limit}")
        return super().call_binop(context, operator, left, right)

    def call(self, context, obj, *args, **kwargs):
        text = getattr(obj, "__self__", None)
        if isinstance(text, str) and getattr(obj, "__name__", "") in _TEXT_GROWERS:
            _TEXT_GROWERS[obj.__name__](text, *args, **kwargs)
        return super().call(context, obj, *args, **kwargs)

    def getattr(self, obj, attribute):
        # Data first: `inputs.items` is the input named items, not the dict method.
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _refuse_format(obj)
        return super().getattr(obj, attribute)


def _limit() -> int:
    return settings.CHAMELEON["TEMPLATE_MAX_CHARS"]


def _refuse_format(text, *args, **kwargs):
    raise ExpressionError("str.format is not allowed in templates; use ~ to join text")


def _width_checked(text, width=0, *args, **kwargs):
    if isinstance(width, int) and width > _limit():
        raise ExpressionError(f"a width of {width} is over the limit of {_limit()}")


def _replace_checked(text, old="", new="", *args, **kwargs):
    if isinstance(old, str) and isinstance(new, str):
        grown = len(text) + (text.count(old) if old else len(text) + 1) * len(new)
        if grown > _limit():
            raise ExpressionError(f"replacing would make {grown} characters, over {_limit()}")


def _join_checked(text, items=(), *args, **kwargs):
    if hasattr(items, "__len__") and len(items) * len(text) > _limit():
        raise ExpressionError(f"joining would make over {len(items) * len(text)} characters")


def _tabs_checked(text, tabsize=8, *args, **kwargs):
    if isinstance(tabsize, int) and len(text) + text.count("\t") * tabsize > _limit():
        raise ExpressionError(f"expanding tabs would go over {_limit()} characters")


# str methods whose result can be far larger than their input, checked before they run.
_TEXT_GROWERS = {
    "center": _width_checked,
    "ljust": _width_checked,
    "rjust": _width_checked,
    "zfill": _width_checked,
    "replace": _replace_checked,
    "expandtabs": _tabs_checked,
    "join": _join_checked,
}


def _replace_filter(text, old, new, count=None):
    _replace_checked(str(text), str(old), str(new))
    return str(text).replace(str(old), str(new), -1 if count is None else count)


@pass_eval_context
def _join_filter(eval_ctx, value, d="", attribute=None):
    _join_checked(str(d), value)
    return do_join(eval_ctx, value, d, attribute)


_env = _Sandbox(undefined=StrictUndefined, autoescape=False)
# Helpers that build text of any size from a small argument; `replace` is kept, bounded.
for _name in ("center", "indent", "wordwrap", "format"):
    _env.filters.pop(_name, None)
_env.filters["replace"] = _replace_filter
_env.filters["join"] = _join_filter
_env.globals.pop("lipsum", None)
MAX_EXPONENT = 100
MAX_POWER_BITS = 65_536
MAX_WORK = 200_000  # lines of a template's own code plus Python calls one evaluation may run
MAX_NATIVE_SIZE = 1_000_000  # characters and items of a value an expression gives
_SINGLE_EXPRESSION = re.compile(r"\s*\{\{((?:(?!\{\{|\}\}).)*)\}\}\s*", re.S)


class ExpressionError(Exception):
    """A template or expression failed to compile or evaluate; the message says why."""


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


@lru_cache(maxsize=4096)
def _compiled_expression(source: str):
    try:
        return _env.compile_expression(source, undefined_to_none=False)
    except TemplateError as exc:
        raise ExpressionError(f"syntax error in {source!r}: {exc}") from None


@lru_cache(maxsize=4096)
def _compiled_template(source: str):
    try:
        return _env.from_string(source)
    except TemplateError as exc:
        raise ExpressionError(f"syntax error in {source!r}: {exc}") from None


def compile_expression(source: str) -> None:
    """Raise ExpressionError when `source` is not a valid expression."""
    _compiled_expression(source)


def compile_template(source: str) -> None:
    """Raise ExpressionError when `source` is not a valid template."""
    single = _SINGLE_EXPRESSION.fullmatch(source)
    if single:
        _compiled_expression(single.group(1))
    else:
        _compiled_template(source)


@contextmanager
def _bounded_work(source: str) -> Iterator[None]:
    """Count the work an evaluation does and stop it past MAX_WORK: each line of the template's
    own code (its loops), and each Python call anywhere (a filter, a generator resumed: what
    `map` over a huge list does item by item). C code between calls is bounded by the checks
    above (sizes, repetitions, powers)."""
    left = [MAX_WORK]

    def spend() -> None:
        left[0] -= 1
        if left[0] < 0:
            raise ExpressionError(f"{source!r}: more than {MAX_WORK} steps of work")

    def count(frame, event, arg):
        if event == "line":
            spend()
        return count

    def template_frames(frame, event, arg):
        spend()
        return count if frame.f_code.co_filename == "<template>" else None

    previous = sys.gettrace()
    sys.settrace(template_frames)
    try:
        yield
    finally:
        sys.settrace(previous)


@lru_cache(maxsize=4096)
def _calls_anything(source: str) -> bool:
    """Whether the expression calls a filter, test or function: without one, its compiled code
    runs each of its lines once, and needs no count (guardian rules such as `x.score < 0.7`)."""
    tree = _env.parse(f"{{{{ ({source}) }}}}")
    return any(True for _ in tree.find_all((nodes.Call, nodes.Filter, nodes.Test)))


def evaluate(source: str, context: dict[str, Any]) -> Any:
    """The native value of the expression `source`, its work counted when it calls anything."""
    expression = _compiled_expression(source)
    try:
        if _calls_anything(source):
            with _bounded_work(source):
                value = expression(**context)
        else:
            value = expression(**context)
        if isinstance(value, Undefined):
            str(value)  # StrictUndefined raises here, naming what is missing
    except ExpressionError:
        raise
    except Exception as exc:  # the sandbox raises many kinds; all are the author's error
        raise ExpressionError(f"{source!r}: {exc}") from None
    _check_size(value)
    return value


def render(value: Any, context: dict[str, Any]) -> Any:
    """Render every template string inside `value` (dicts and lists are walked)."""
    if isinstance(value, dict):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context) for item in value]
    if not isinstance(value, str) or not is_template(value):
        return value
    single = _SINGLE_EXPRESSION.fullmatch(value)
    if single:
        return evaluate(single.group(1), context)
    try:
        with _bounded_work(value):
            text = _compiled_template(value).render(**context)
    except ExpressionError:
        raise
    except Exception as exc:
        raise ExpressionError(f"{value!r}: {exc}") from None
    _check_size(text)
    return text


def _check_size(value: Any) -> None:
    """Refuse text over TEMPLATE_MAX_CHARS, and a native value over MAX_NATIVE_SIZE characters
    and items counted as it would be written out (a list repeated in a list counts each time)."""
    limit = settings.CHAMELEON["TEMPLATE_MAX_CHARS"]
    if isinstance(value, str):
        if len(value) > limit:
            raise ExpressionError(f"result is {len(value)} characters, over the limit of {limit}")
        return
    size, stack = 0, [value]
    while stack:
        item = stack.pop()
        size += len(item) if isinstance(item, str) else 1
        if size > MAX_NATIVE_SIZE:
            raise ExpressionError(f"result is over {MAX_NATIVE_SIZE} characters and items")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def references(source: str) -> set[tuple[str, str | None]]:
    """Names a template or expression reads from its context: ("steps", "fetch"), ("item", None).

    The second item is the attribute read on the name (None when read whole or dynamically).
    Names the template binds itself (`{% for x in ... %}`, `loop`) are not context reads.
    """
    try:
        tree = _env.parse(source)
    except TemplateError as exc:
        raise ExpressionError(f"syntax error in {source!r}: {exc}") from None
    context_names = meta.find_undeclared_variables(tree)
    found: set[tuple[str, str | None]] = set()
    attributed: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name in context_names:
            attributed.add(id(node.node))
            if isinstance(node, nodes.Getattr):
                found.add((node.node.name, node.attr))
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                found.add((node.node.name, node.arg.value))
            else:
                found.add((node.node.name, None))
    for node in tree.find_all(nodes.Name):
        if node.name in context_names and node.ctx == "load" and id(node) not in attributed:
            found.add((node.name, None))
    return found


def expression_references(source: str) -> set[tuple[str, str | None]]:
    return references("{{ " + source + " }}")


def expression_paths(source: str) -> set[tuple[str | int, ...]]:
    """The data an expression reads, each as the path of keys from a context name:
    `steps.risk.output.score < inputs['limit']` reads ("steps", "risk", "output", "score") and
    ("inputs", "limit"). A key computed at run time ends its path (`steps[x].output` reads
    ("steps",) and what `x` reads); a method called is not read (`inputs.name.upper()` reads
    ("inputs", "name"))."""
    try:
        tree = _env.parse("{{ " + source + " }}")
    except TemplateError as exc:
        raise ExpressionError(f"syntax error in {source!r}: {exc}") from None
    read = meta.find_undeclared_variables(tree) - set(_env.globals)
    lookups = (nodes.Getattr, nodes.Getitem)
    inner = {id(node.node) for node in tree.find_all(lookups)}
    called = {id(node.node) for node in tree.find_all(nodes.Call)}
    paths = set()
    for node in tree.find_all((*lookups, nodes.Name)):
        if id(node) not in inner:
            if id(node) in called and isinstance(node, nodes.Getattr):
                node = node.node
            path = _path_of(node)
            if path and path[0] in read:
                paths.add(path)
    return paths


def _path_of(node) -> tuple[str | int, ...]:
    """Keys from the root name to `node`, cut at the first key that is not a constant."""
    keys: list = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            keys.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str | int):
            keys.append(node.arg.value)
        else:
            keys.clear()
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load":
        return ()
    return (node.name, *reversed(keys))
