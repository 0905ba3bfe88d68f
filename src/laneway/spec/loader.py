"""Reads laneway.yaml into a Spec, with errors that name file, line, column and field.

Called by the CLI, the builder and the API, each with the text of one spec. Pure: reading
the file is `laneway.workspace.load_spec`'s job.

The YAML is composed, not loaded, so every value keeps the node it came from; the nodes
are turned into plain data here (rejecting duplicate keys, keeping mapping keys and
`env` values as the text that was typed) and the data is validated against `Spec`. Each
pydantic error is then mapped back to its node and rewritten in plain words (`spec.messages`):

    laneway.yaml:12:5: services.web.replicas: expected an integer, got 'two'

Every problem is reported at once, sorted by position. Nothing but `SpecError` leaves.
The limits of `spec.limits` (size, counts, nesting) are checked first and while the nodes
are converted, so an oversized file costs little.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from laneway.errors import SpecError
from laneway.spec import limits, messages
from laneway.spec.messages import Loc
from laneway.spec.model import Spec

_HINT = "docs/spec.md describes every field; `laneway spec schema` prints the JSON Schema."
_YAML = "tag:yaml.org,2002:"
_PLAIN_TAGS = {f"{_YAML}{name}" for name in ("str", "int", "float", "bool", "null")}

# Plain words for PyYAML's commonest complaints (substring of its message -> ours).
_YAML_PROBLEMS = (
    ("'\\t' that cannot start any token", "tab character; indent with spaces"),
    (
        "mapping values are not allowed here",
        "unexpected ':'; check the indentation, or quote a value that contains ': '",
    ),
    ("expected <block end>", "this line's indentation does not match the lines before it"),
    ("could not find expected ':'", "expected `key: value` on this line"),
    ("found unexpected end of stream", "unexpected end of file; is a quote left open?"),
    ("found undefined alias", "alias (*name) with no anchor (&name) before it"),
    ("but found another document", "only one YAML document is allowed; remove the '---'"),
)


@dataclass
class _Document:
    """Plain data made from the YAML nodes, and where each value and key sits."""

    filename: str
    values: dict[Loc, Node] = field(default_factory=dict)
    keys: dict[Loc, Node] = field(default_factory=dict)
    problems: list[tuple[int, int, str]] = field(default_factory=list)
    broken: set[Loc] = field(default_factory=set)  # reported already; pydantic's view is noise
    open: set[int] = field(default_factory=set)  # ids of the nodes being converted
    seen: set[int] = field(default_factory=set)  # ids of the nodes converted
    aliases: bool = False  # a node was reached twice: an alias
    constructor: yaml.constructor.SafeConstructor = field(
        default_factory=yaml.constructor.SafeConstructor
    )
    nodes: int = 0

    def report(self, node: Node | None, loc: Loc, message: str) -> None:
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        where = f"{_dotted(loc)}: " if loc else ""
        self.problems.append((line, col, f"{self.filename}:{line}:{col}: {where}{message}"))


class _TooBig(Exception):
    pass


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, stopping at nesting far past the limit while it scans.

    Its scanner takes time quadratic in the depth of flow collections (`[[[[...`), and its
    composer recurses once per level: a 256 KiB file of brackets would take minutes. The
    exact limit, with the field's location, is checked later; this only stops the absurd.
    """

    def _check_depth(self) -> None:
        if self.flow_level + len(self.indents) > 2 * limits.MAX_DEPTH:
            raise _TooDeep(self.get_mark())

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's)
        self._check_depth()
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        self._check_depth()
        return bool(super().add_indent(column))


def load_spec_text(text: str, *, filename: str = "laneway.yaml") -> Spec:
    """Parse and validate one spec; raise SpecError listing every problem found.

    CPU-bound (about 1 s for the largest spec allowed): the server calls it off its event loop.
    """
    too_large = limits.too_large(utf8_size(text))
    if too_large:
        raise SpecError([f"{filename}:1:1: {too_large}"], hint=limits.HINT)
    try:
        return _load(text, filename)
    except SpecError:
        raise
    except RecursionError:
        raise SpecError([f"{filename}:1:1: {limits.too_deep()}"], hint=limits.HINT) from None
    except Exception as exc:  # the boundary: no traceback reaches a user
        raise SpecError(
            [f"{filename}:1:1: could not read the spec ({type(exc).__name__}: {exc})"]
        ) from None


def utf8_size(text: str) -> int:
    """The size of `text` in UTF-8, without encoding it when that cannot matter."""
    if len(text) * 4 <= limits.MAX_BYTES:
        return len(text)
    return len(text.encode("utf-8", errors="surrogatepass"))


def _load(text: str, filename: str) -> Spec:
    text = text.removeprefix("\ufeff")
    try:
        root = yaml.compose(text, Loader=_Loader)
    except _TooDeep as exc:
        line, col = exc.mark.line + 1, exc.mark.column + 1
        raise SpecError(
            [f"{filename}:{line}:{col}: {limits.too_deep()}"], hint=limits.HINT
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(exc, filename)], hint=_HINT) from None
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        what = f"character {_char(exc.character)} is not allowed"
        raise SpecError([f"{filename}:{line}:{col}: invalid YAML: {what}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{filename}:1:1: invalid YAML: {exc}"]) from None

    if root is None or (isinstance(root, ScalarNode) and root.value == ""):
        raise SpecError(
            [f"{filename}:1:1: the file is empty; a spec needs at least `app` and `services`"],
            hint="`laneway init` writes a starter laneway.yaml.",
        )
    if not isinstance(root, MappingNode):
        line, col = root.start_mark.line + 1, root.start_mark.column + 1
        raise SpecError(
            [
                f"{filename}:{line}:{col}: expected a mapping of settings (app, services, ...) "
                f"at the top level, got {_describe_node(root)}"
            ],
            hint=_HINT,
        )

    document = _Document(filename)
    try:
        data = _convert(document, root, (), depth=0)
    except _TooBig:
        problem = limits.too_many_values(aliases=document.aliases)
        raise SpecError([f"{filename}:1:1: {problem}"], hint=limits.HINT) from None
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            _report_validation(document, error)
    if document.problems or spec is None:
        problems = [message for _, _, message in sorted(set(document.problems))]
        raise SpecError(problems, hint=_HINT)
    return spec


# --- YAML nodes -> data ------------------------------------------------------------------


def _convert(document: _Document, node: Node, loc: Loc, *, depth: int) -> Any:
    document.nodes += 1
    if document.nodes > limits.MAX_VALUES:
        raise _TooBig
    if id(node) in document.open:
        document.report(node, loc, "an alias refers to a value that contains it")
        document.broken.add(loc)
        return None
    if id(node) in document.seen:
        document.aliases = True
    document.seen.add(id(node))
    if depth > limits.MAX_DEPTH:
        document.report(node, loc[:3], limits.too_deep())
        document.broken.add(loc[:3])
        return None
    document.values[loc] = node
    if isinstance(node, ScalarNode):
        return _convert_scalar(document, node, loc)
    if node.tag not in (f"{_YAML}map", f"{_YAML}seq"):
        document.report(node, loc, f"unsupported tag {_tag(node.tag)}")
        document.broken.add(loc)
        return None
    if _too_many(document, node, loc, len(node.value)):
        return None
    document.open.add(id(node))
    try:
        if isinstance(node, MappingNode):
            result = _convert_mapping(document, node, loc, depth=depth)
            return None if _too_many(document, node, loc, len(result)) else result
        return [
            _convert(document, item, (*loc, index), depth=depth + 1)
            for index, item in enumerate(node.value)
        ]
    finally:
        document.open.discard(id(node))


def _too_many(document: _Document, node: Node, loc: Loc, count: int) -> bool:
    """Whether the mapping or list at `loc` has more entries than allowed (then reported)."""
    problem = limits.too_many(loc, count)
    if problem is None:
        return False
    if loc not in document.broken:
        document.report(node, loc, problem)
        document.broken.add(loc)
    return True


def _convert_scalar(document: _Document, node: ScalarNode, loc: Loc) -> Any:
    if node.tag == f"{_YAML}timestamp":
        return node.value  # no spec field is a date; keep what was typed
    if messages.is_env_value(loc) and node.style is None and node.tag != f"{_YAML}null":
        # `VERSION: 1.10` means "1.10", not 1.1; `DEBUG: yes` means "yes", not true.
        return node.value
    if node.tag not in _PLAIN_TAGS:
        document.report(node, loc, f"unsupported tag {_tag(node.tag)}")
        document.broken.add(loc)
        return None
    try:
        return document.constructor.construct_object(node)
    except (yaml.YAMLError, ValueError, TypeError):
        document.report(node, loc, f"not a valid {_tag(node.tag)}: {node.value!r}")
        document.broken.add(loc)
        return None


def _convert_mapping(document: _Document, node: MappingNode, loc: Loc, *, depth: int) -> Any:
    result: dict[str, Any] = {}
    # `<<: *defaults` merges a mapping (or a list of them, the first winning); keys written
    # here win over merged ones. Merged first, so the winners' nodes are the ones recorded.
    sources: list[MappingNode] = []
    for key_node, value_node in node.value:
        if key_node.tag != f"{_YAML}merge":
            continue
        listed = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        mappings = [source for source in listed if isinstance(source, MappingNode)]
        if len(mappings) != len(listed):
            document.report(value_node, loc, "`<<` needs a mapping or a list of mappings")
            continue
        sources += mappings
    for source in reversed(sources):
        if id(source) in document.open:
            document.report(source, loc, "an alias refers to a value that contains it")
            continue
        document.open.add(id(source))
        try:
            result.update(_convert_mapping(document, source, loc, depth=depth + 1))
        finally:
            document.open.discard(id(source))

    written: dict[str, Node] = {}
    for key_node, value_node in node.value:
        if key_node.tag == f"{_YAML}merge":
            continue
        if not isinstance(key_node, ScalarNode):
            document.report(key_node, loc, "keys must be plain names, not lists or mappings")
            continue
        key = key_node.value
        if key in written:
            first = written[key].start_mark.line + 1
            document.report(key_node, (*loc, key), f"duplicate key (first at line {first})")
            continue
        written[key] = key_node
        if key in result:
            _forget(document, (*loc, key))
        document.keys[(*loc, key)] = key_node
        result[key] = _convert(document, value_node, (*loc, key), depth=depth + 1)
    return result


def _forget(document: _Document, loc: Loc) -> None:
    """Drop the recorded nodes at and under `loc` (a merged value being overridden)."""
    for table in (document.values, document.keys):
        for recorded in [r for r in table if r[: len(loc)] == loc]:
            del table[recorded]


# --- pydantic errors -> problems reported ------------------------------------------------


def _report_validation(document: _Document, error: ErrorDetails) -> None:
    loc: Loc = tuple(error["loc"])
    if any(loc[: len(broken)] == broken for broken in document.broken):
        return  # reported already, in YAML's terms
    for node, where, message in messages.explain(error, document.values, document.keys):
        document.report(node, where, message)


# --- words ---------------------------------------------------------------------------------


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _describe_node(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    return repr(node.value if len(node.value) <= 40 else node.value[:37] + "...")


def _yaml_problem(exc: yaml.MarkedYAMLError, filename: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    raw = " ".join(part for part in (exc.context, exc.problem) if part) or "syntax error"
    plain = next((ours for theirs, ours in _YAML_PROBLEMS if theirs in raw), exc.problem or raw)
    return f"{filename}:{line}:{col}: invalid YAML: {plain}"


def _char(character: object) -> str:
    return repr(chr(character) if isinstance(character, int) else character)


def _tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1
