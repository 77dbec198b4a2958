"""Bounds on what callers send, checked before any work is done on it.

JSON values (request bodies, run inputs and ctx, specs) may nest MAX_DEPTH deep and hold no NUL
characters or lone surrogates (PostgreSQL can store neither). YAML is loaded through libyaml with
its nesting checked on the event stream first, and refused when its aliases would expand past
MAX_YAML_NODES (a few hundred bytes of anchors can stand for millions of nodes). Each refusal is
an InvalidInput naming the path of what is wrong.
"""

import yaml

from config.errors import InvalidInput

MAX_DEPTH = 64
MAX_YAML_NODES = 500_000
_NESTING = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_ENDING = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def json_checked(value, field: str):
    """Return `value` if it nests at most MAX_DEPTH deep and its strings (keys too) can be
    stored; else raise InvalidInput naming the first path that is wrong."""
    stack = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            _refuse(field, path, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            _text_checked(field, path, item)
        elif isinstance(item, dict):
            for key, child in item.items():
                key_path = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key!r}]"
                if isinstance(key, str):
                    _text_checked(field, key_path, key)
                stack.append((child, key_path, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))
    return value


def _text_checked(field: str, path: str, text: str) -> None:
    if "\x00" in text:
        _refuse(field, path, "contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        _refuse(field, path, "contains a lone surrogate (not valid Unicode text)")


def yaml_loaded(source: str, field: str, *, top_level_items: dict[str, int] | None = None):
    """Parse YAML (or JSON, which YAML reads too) within the bounds above; `top_level_items`
    bounds the length of lists at the document's top level by key (e.g. {"steps": 5000}),
    checked on the event stream too, before anything is built."""
    try:
        _events_checked(source, field, top_level_items or {})
        loader = yaml.CSafeLoader(source)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _expansion_checked(node, field)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise InvalidInput(
            "The spec is not valid YAML or JSON.", details={field: str(exc)}
        ) from None


def _events_checked(source: str, field: str, limits: dict[str, int]) -> None:
    depth, key, is_key, items = 0, None, True, 0
    for event in yaml.parse(source, Loader=yaml.CSafeLoader):
        if isinstance(event, _ENDING):
            depth -= 1
            if depth == 1:  # a top-level value ended
                key, is_key = None, True
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        if depth == 1:  # a key or a value of the top-level mapping
            if is_key:
                key = getattr(event, "value", None)
            items = 0
            is_key = not is_key if not isinstance(event, _NESTING) else is_key
        elif depth == 2 and key in limits:  # an item of a top-level list
            items += 1
            if items > limits[key]:
                _refuse(field, key, f"has more than {limits[key]} items")
        if isinstance(event, _NESTING):
            depth += 1
            if depth > MAX_DEPTH:
                _refuse(field, field, f"nested deeper than {MAX_DEPTH} levels")


def _expansion_checked(root, field: str) -> None:
    """Refuse a node graph whose aliases expand past MAX_YAML_NODES, or refer to themselves.
    Each node is sized once (aliased nodes are shared), so this costs what the text does."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, children_sized = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_sized:
            open_nodes.add(id(node))
            stack.append((node, True))
            for child in children:
                if id(child) in open_nodes:
                    _refuse(field, field, "an alias refers to a node that contains it")
                stack.append((child, False))
            continue
        open_nodes.discard(id(node))
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        if sizes[id(node)] > MAX_YAML_NODES:
            _refuse(field, field, f"its aliases expand to more than {MAX_YAML_NODES} nodes")


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _refuse(field: str, path: str, problem: str):
    raise InvalidInput(f"Invalid {field}: {path} {problem}.", details={path: problem})
