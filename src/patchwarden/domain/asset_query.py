"""The asset query language used by dynamic groups.

A query is a boolean expression over an asset's attributes, tags and OS::

    os = debian and os_version = "12"
    tag = pci and criticality <= 2
    environment in (prod, staging) and not internet_facing = true
    hostname ~ "db-*" or tag = database

Grammar (keywords are case-insensitive; ``not`` binds tighter than ``and``,
which binds tighter than ``or``)::

    query      := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := FIELD OP value
                | FIELD ["not"] "in" "(" value ("," value)* ")"
    OP         := "=" | "!=" | "<" | "<=" | ">" | ">=" | "~"
    value      := bare word | "double-quoted string" (\\" and \\\\ escape)

Semantics:

- Text comparisons (``=``, ``!=``, ``in``) ignore case. A missing value equals
  the empty string, so ``owner = ""`` finds assets without an owner.
- ``~`` is a shell-style glob (``*``, ``?``, ``[abc]``), case-insensitive.
- ``!=`` and ``not in`` are exactly the negation of ``=`` and ``in``.
- ``<``, ``<=``, ``>``, ``>=`` work on ``criticality`` (numbers), ``os_version``
  (version order: ``9 < 12``, ``22.04 < 22.10``) and ``data_sensitivity``
  (public < internal < confidential < restricted). A missing value never
  satisfies an ordering comparison.
- ``tag = x`` means the asset has tag x; ``tag != x`` that it has not;
  ``tag in (a, b)`` that it has any of them; ``tag ~ "pci-*"`` that any tag
  matches the glob.
- ``internet_facing`` takes ``true`` or ``false``.

`parse` turns text into a frozen `Query`; `Query.text` is its canonical form
(``parse(q.text) == q``) and `Query.matches` evaluates it over a plain mapping
of asset column names to values (as stored on the ``assets`` table).
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias, TypeVar

from patchwarden.domain.attributes import DATA_SENSITIVITIES, DEVICE_TYPES, normalise_tag
from patchwarden.errors import InvalidInput

MAX_QUERY_LENGTH: Final = 2000
# Deeper nesting than this is certainly not a hand-written group query; the
# limit keeps the recursive parser and evaluator far from Python's stack limit.
MAX_DEPTH: Final = 50


class FieldKind(enum.Enum):
    TEXT = "text"
    VERSION = "version"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ENUM = "enum"
    TAG = "tag"


@dataclass(frozen=True)
class FieldSpec:
    """A query field: the asset column it reads and how its values compare."""

    name: str
    column: str
    kind: FieldKind
    choices: tuple[str, ...] = ()  # ENUM: the valid values
    ordered: bool = False  # ENUM: whether `choices` is in ascending order


def _text(name: str, column: str | None = None) -> FieldSpec:
    return FieldSpec(name, column or name, FieldKind.TEXT)


FIELDS: Final[Mapping[str, FieldSpec]] = {
    spec.name: spec
    for spec in (
        _text("hostname"),
        _text("fqdn"),
        _text("os", "os_id"),
        FieldSpec("os_version", "os_version_id", FieldKind.VERSION),
        _text("os_name"),
        _text("kernel"),
        _text("arch"),
        _text("environment"),
        _text("owner"),
        _text("business_service"),
        _text("region"),
        _text("timezone"),
        FieldSpec("criticality", "criticality", FieldKind.NUMBER),
        FieldSpec("internet_facing", "internet_facing", FieldKind.BOOLEAN),
        FieldSpec("data_sensitivity", "data_sensitivity", FieldKind.ENUM, DATA_SENSITIVITIES, True),
        FieldSpec("device_type", "device_type", FieldKind.ENUM, DEVICE_TYPES),
        _text("source"),
        _text("vendor"),
        _text("model"),
        _text("status"),
        _text("virtualization"),
        _text("cloud_provider"),
        FieldSpec("tag", "tags", FieldKind.TAG),
    )
}
# Other spellings people reach for; the canonical text uses the main name.
FIELD_ALIASES: Final[Mapping[str, str]] = {
    "os_id": "os",
    "os_version_id": "os_version",
    "tags": "tag",
}
# Every asset column a query may read: what a caller must load to evaluate any query.
QUERY_COLUMNS: Final = frozenset(spec.column for spec in FIELDS.values())

COMPARISON_OPERATORS: Final = ("=", "!=", "<", "<=", ">", ">=", "~")
ORDERING_OPERATORS: Final = frozenset({"<", "<=", ">", ">="})
KEYWORDS: Final = frozenset({"and", "or", "not", "in"})

Value: TypeAlias = str | int | bool


class QuerySyntaxError(InvalidInput):
    """A query that does not parse or breaks a rule; `position` is 1-based."""

    def __init__(self, message: str, position: int, expected: str | None = None) -> None:
        super().__init__(f"invalid query at position {position}: {message}")
        self.position = position
        self.expected = expected


# ---------------------------------------------------------------------------
# The syntax tree


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    value: Value


@dataclass(frozen=True)
class InList:
    field: str
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node: TypeAlias = Compare | InList | Not | And | Or


@dataclass(frozen=True)
class Query:
    """A parsed query. Build one with `parse`."""

    root: Node

    @property
    def text(self) -> str:
        """The canonical form: lower-case keywords and operators spaced out,
        values quoted only where needed, parentheses only where needed."""
        return _render(self.root, _PREC_OR)

    @property
    def columns(self) -> frozenset[str]:
        """The asset columns this query reads (load only these to evaluate it)."""
        return frozenset(FIELDS[leaf.field].column for leaf in _leaves(self.root))

    def matches(self, attrs: Mapping[str, object]) -> bool:
        """Whether an asset, given as {column name: value}, satisfies the query.

        Missing keys count as missing values (None)."""
        return _evaluate(self.root, attrs)

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------
# Lexer


class _T(enum.Enum):
    WORD = "word"
    STRING = "string"
    OP = "operator"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    END = "end of query"


@dataclass(frozen=True)
class _Token:
    kind: _T
    text: str  # the value: for STRING, with quotes removed and escapes resolved
    pos: int  # 1-based position of the first character

    def describe(self) -> str:
        if self.kind is _T.END:
            return "end of query"
        if self.kind is _T.STRING:
            return f'"{self.text}"'
        return f"'{self.text}'"


_BARE_CHARS = r"A-Za-z0-9_.:/*?@+\-"
_BARE_RE = re.compile(f"[{_BARE_CHARS}]+")
_BARE_FULL_RE = re.compile(f"[{_BARE_CHARS}]+\\Z")
_OP_CHARS = "=!<>~"


def _tokenise(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "(),":
            kind = {"(": _T.LPAREN, ")": _T.RPAREN, ",": _T.COMMA}[ch]
            tokens.append(_Token(kind, ch, i + 1))
            i += 1
        elif ch == '"':
            i = _read_string(text, i, tokens)
        elif ch in _OP_CHARS:
            start = i
            while i < n and text[i] in _OP_CHARS:
                i += 1
            op = text[start:i]
            if op not in COMPARISON_OPERATORS:
                raise QuerySyntaxError(
                    f"unknown operator {op!r}; valid operators: "
                    f"{', '.join(COMPARISON_OPERATORS)}, in, not in",
                    start + 1,
                    "an operator",
                )
            tokens.append(_Token(_T.OP, op, start + 1))
        else:
            match = _BARE_RE.match(text, i)
            if match is None:
                hint = " (use 'and', 'or', 'not')" if ch in "&|" else ""
                raise QuerySyntaxError(
                    f"unexpected character {ch!r}{hint}; quote values that contain it", i + 1
                )
            tokens.append(_Token(_T.WORD, match.group(), i + 1))
            i = match.end()
    tokens.append(_Token(_T.END, "", n + 1))
    return tokens


def _read_string(text: str, start: int, tokens: list[_Token]) -> int:
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            chars.append(text[i + 1])
            i += 2
        elif ch == '"':
            tokens.append(_Token(_T.STRING, "".join(chars), start + 1))
            return i + 1
        else:
            chars.append(ch)
            i += 1
    raise QuerySyntaxError("unterminated string: missing closing '\"'", start + 1, "'\"'")


# ---------------------------------------------------------------------------
# Parser


def parse(text: str) -> Query:
    """Parse query text; raises `QuerySyntaxError` (an `InvalidInput`) saying
    where the problem is and what was expected there."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(
            f"query is {len(text)} characters long; the limit is {MAX_QUERY_LENGTH}",
            MAX_QUERY_LENGTH + 1,
        )
    return Query(_Parser(_tokenise(text)).parse())


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._i = 0
        self._depth = 0

    # -- token helpers

    def _peek(self) -> _Token:
        return self._tokens[self._i]

    def _next(self) -> _Token:
        token = self._tokens[self._i]
        if token.kind is not _T.END:
            self._i += 1
        return token

    def _at_keyword(self, word: str) -> bool:
        token = self._peek()
        return token.kind is _T.WORD and token.text.lower() == word

    def _fail(self, expected: str, token: _Token | None = None) -> QuerySyntaxError:
        token = token or self._peek()
        return QuerySyntaxError(
            f"expected {expected}, found {token.describe()}", token.pos, expected
        )

    def _expect(self, kind: _T, expected: str) -> _Token:
        if self._peek().kind is not kind:
            raise self._fail(expected)
        return self._next()

    # -- grammar

    def parse(self) -> Node:
        node = self._or()
        token = self._peek()
        if token.kind is _T.RPAREN:
            raise QuerySyntaxError("unbalanced ')': no matching '('", token.pos, "'and', 'or'")
        if token.kind is not _T.END:
            raise self._fail("'and', 'or' or end of query")
        return node

    def _or(self) -> Node:
        operands = [self._and()]
        while self._at_keyword("or"):
            self._next()
            operands.append(self._and())
        return _join(Or, operands)

    def _and(self) -> Node:
        operands = [self._not()]
        while self._at_keyword("and"):
            self._next()
            operands.append(self._not())
        return _join(And, operands)

    def _not(self) -> Node:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise QuerySyntaxError(f"query nests deeper than {MAX_DEPTH} levels", self._peek().pos)
        try:
            if self._at_keyword("not"):
                self._next()
                return Not(self._not())
            token = self._peek()
            if token.kind is _T.LPAREN:
                self._next()
                node = self._or()
                if self._peek().kind is not _T.RPAREN:
                    if self._peek().kind is _T.END:
                        raise QuerySyntaxError(
                            f"unbalanced '(' at position {token.pos}: expected ')', "
                            "found end of query",
                            self._peek().pos,
                            "')'",
                        )
                    raise self._fail("')', 'and' or 'or'")
                self._next()
                return node
            return self._comparison()
        finally:
            self._depth -= 1

    def _comparison(self) -> Node:
        token = self._peek()
        if token.kind is not _T.WORD or token.text.lower() in KEYWORDS:
            raise self._fail("a field name or '('")
        spec = _field(token)
        self._next()
        negated = False
        if self._at_keyword("not"):
            self._next()
            negated = True
            if not self._at_keyword("in"):
                raise self._fail("'in' after 'not'")
        if self._at_keyword("in"):
            self._next()
            return self._in_list(spec, negated)
        op_token = self._peek()
        if op_token.kind is not _T.OP:
            raise self._fail(f"an operator ({', '.join(COMPARISON_OPERATORS)}, in)")
        self._next()
        _check_operator(spec, op_token)
        value = _coerce(spec, op_token.text, self._value())
        return Compare(spec.name, op_token.text, value)

    def _in_list(self, spec: FieldSpec, negated: bool) -> Node:
        self._expect(_T.LPAREN, "'(' to start the list of values")
        values = [_coerce(spec, "in", self._value())]
        while self._peek().kind is _T.COMMA:
            self._next()
            values.append(_coerce(spec, "in", self._value()))
        if self._peek().kind is not _T.RPAREN:
            raise self._fail("',' or ')' in the list of values")
        self._next()
        unique = tuple(dict.fromkeys(values))  # keep order, drop repeats
        return InList(spec.name, unique, negated)

    def _value(self) -> _Token:
        token = self._peek()
        if token.kind is _T.STRING:
            return self._next()
        if token.kind is _T.WORD:
            if token.text.lower() in KEYWORDS:
                raise QuerySyntaxError(
                    f"expected a value, found keyword '{token.text}' "
                    "(quote it to use it as a value)",
                    token.pos,
                    "a value",
                )
            return self._next()
        raise self._fail("a value (a word or a double-quoted string)")


def _join(cls: type[And] | type[Or], operands: list[Node]) -> Node:
    """One operand stays itself; nested nodes of the same kind are flattened."""
    if len(operands) == 1:
        return operands[0]
    flat: list[Node] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, cls) else (operand,))
    return cls(tuple(flat))


def _field(token: _Token) -> FieldSpec:
    name = token.text.lower()
    name = FIELD_ALIASES.get(name, name)
    spec = FIELDS.get(name)
    if spec is None:
        raise QuerySyntaxError(
            f"unknown field '{token.text}'; valid fields: {', '.join(sorted(FIELDS))}",
            token.pos,
            "a field name",
        )
    return spec


_ORDERED_FIELDS = sorted(
    spec.name
    for spec in FIELDS.values()
    if spec.kind in (FieldKind.NUMBER, FieldKind.VERSION) or spec.ordered
)


def _check_operator(spec: FieldSpec, token: _Token) -> None:
    op = token.text
    if op in ORDERING_OPERATORS:
        orderable = spec.kind in (FieldKind.NUMBER, FieldKind.VERSION) or spec.ordered
        if not orderable:
            raise QuerySyntaxError(
                f"operator '{op}' does not apply to field '{spec.name}'; ordering works on "
                f"{', '.join(_ORDERED_FIELDS)}",
                token.pos,
                "=, !=, ~ or in",
            )
    elif op == "~" and spec.kind in (FieldKind.NUMBER, FieldKind.BOOLEAN):
        raise QuerySyntaxError(
            f"operator '~' (glob) does not apply to {spec.kind.value} field '{spec.name}'",
            token.pos,
            "=, !=, <, <=, >, >= or in",
        )


def _coerce(spec: FieldSpec, op: str, token: _Token) -> Value:
    """The typed value of `token` for `spec`, checked against the field's rules."""
    raw = token.text
    if spec.kind is FieldKind.NUMBER:
        if not re.fullmatch(r"[+-]?[0-9]{1,9}", raw.strip()):
            raise QuerySyntaxError(
                f"field '{spec.name}' takes a whole number, found {token.describe()}",
                token.pos,
                "a whole number",
            )
        return int(raw)
    if spec.kind is FieldKind.BOOLEAN:
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            raise QuerySyntaxError(
                f"field '{spec.name}' takes true or false, found {token.describe()}",
                token.pos,
                "true or false",
            )
        return lowered == "true"
    if op == "~":
        return raw  # a glob pattern: matched case-insensitively, not validated
    if spec.kind is FieldKind.ENUM:
        lowered = raw.strip().lower()
        if lowered not in spec.choices:
            raise QuerySyntaxError(
                f"field '{spec.name}' takes one of {', '.join(spec.choices)}; "
                f"found {token.describe()}",
                token.pos,
                f"one of {', '.join(spec.choices)}",
            )
        return lowered
    if spec.kind is FieldKind.TAG:
        try:
            return normalise_tag(raw)
        except ValueError as exc:
            raise QuerySyntaxError(str(exc), token.pos, "a tag") from exc
    return raw


# ---------------------------------------------------------------------------
# Canonical text

_PREC_OR, _PREC_AND, _PREC_NOT = 1, 2, 3


def _render(node: Node, context: int) -> str:
    if isinstance(node, Compare):
        return f"{node.field} {node.op} {_render_value(node.value)}"
    if isinstance(node, InList):
        keyword = "not in" if node.negated else "in"
        values = ", ".join(_render_value(value) for value in node.values)
        return f"{node.field} {keyword} ({values})"
    if isinstance(node, Not):
        return f"not {_render(node.operand, _PREC_NOT)}"
    precedence, keyword = (_PREC_AND, " and ") if isinstance(node, And) else (_PREC_OR, " or ")
    text = keyword.join(_render(operand, precedence + 1) for operand in node.operands)
    return f"({text})" if precedence < context else text


def _render_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if _BARE_FULL_RE.match(value) and value.lower() not in KEYWORDS:
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _leaves(node: Node) -> Iterator[Compare | InList]:
    if isinstance(node, Compare | InList):
        yield node
    elif isinstance(node, Not):
        yield from _leaves(node.operand)
    else:
        for operand in node.operands:
            yield from _leaves(operand)


# ---------------------------------------------------------------------------
# Evaluation


def _evaluate(node: Node, attrs: Mapping[str, object]) -> bool:
    if isinstance(node, Compare):
        return _compare(FIELDS[node.field], node.op, node.value, attrs)
    if isinstance(node, InList):
        spec = FIELDS[node.field]
        found = any(_compare(spec, "=", value, attrs) for value in node.values)
        return not found if node.negated else found
    if isinstance(node, Not):
        return not _evaluate(node.operand, attrs)
    if isinstance(node, And):
        return all(_evaluate(operand, attrs) for operand in node.operands)
    return any(_evaluate(operand, attrs) for operand in node.operands)


def _compare(spec: FieldSpec, op: str, value: Value, attrs: Mapping[str, object]) -> bool:
    if op == "!=":
        return not _compare(spec, "=", value, attrs)
    actual = attrs.get(spec.column)
    if spec.kind is FieldKind.TAG:
        tags = [str(tag).lower() for tag in actual] if isinstance(actual, list | tuple) else []
        if op == "~":
            return any(_glob(tag, str(value)) for tag in tags)
        return str(value) in tags
    if spec.kind is FieldKind.NUMBER:
        number = _as_int(actual)
        return number is not None and isinstance(value, int) and _order(op, number, value)
    if spec.kind is FieldKind.BOOLEAN:
        flag = _as_bool(actual)
        return flag is not None and flag == value
    text = "" if actual is None else str(actual)
    if op == "~":
        return actual is not None and _glob(text, str(value))
    if op == "=":
        return text.lower() == str(value).lower()
    # Ordering: missing values never satisfy it.
    if actual is None or text == "":
        return False
    if spec.kind is FieldKind.VERSION:
        return _order(op, _version_key(text), _version_key(str(value)))
    rank = {choice: index for index, choice in enumerate(spec.choices)}
    mine = rank.get(text.lower())
    return mine is not None and _order(op, mine, rank[str(value)])


def _glob(text: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(text.lower(), pattern.lower())


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):
        return int(value)
    return None


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


_VersionKey: TypeAlias = tuple[tuple[int, int, str], ...]
_DIGITS = frozenset("0123456789")


def _version_key(text: str) -> _VersionKey:
    """Natural order: runs of digits compare as numbers, the rest as lower-case text."""
    parts = re.findall(r"[0-9]+|[^0-9]+", text.strip().lower())
    return tuple((0, int(part), "") if part[0] in _DIGITS else (1, 0, part) for part in parts)


_Ordered = TypeVar("_Ordered", int, _VersionKey)


def _order(op: str, left: _Ordered, right: _Ordered) -> bool:
    if op == "=":
        return left == right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    return False
