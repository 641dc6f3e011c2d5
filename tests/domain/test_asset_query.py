"""The dynamic-group query language: parsing, canonical text, evaluation, errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.domain.asset_query import (
    FIELDS,
    MAX_QUERY_LENGTH,
    QUERY_COLUMNS,
    And,
    Compare,
    FieldKind,
    FieldSpec,
    InList,
    Node,
    Not,
    Or,
    Query,
    QuerySyntaxError,
    parse,
)
from patchwarden.errors import InvalidInput

WEB = {
    "hostname": "web-01",
    "fqdn": "web-01.example.com",
    "os_id": "debian",
    "os_version_id": "12",
    "os_name": "Debian GNU/Linux",
    "kernel": "6.1.0-18-amd64",
    "arch": "amd64",
    "environment": "prod",
    "owner": None,
    "business_service": "Shop",
    "region": "eu-west",
    "timezone": "Europe/Berlin",
    "criticality": 2,
    "internet_facing": True,
    "data_sensitivity": "confidential",
    "device_type": "server",
    "source": "agent",
    "vendor": "Dell Inc.",
    "model": "PowerEdge R650",
    "status": "active",
    "virtualization": None,
    "cloud_provider": None,
    "tags": ["pci", "web"],
}
DB = {
    **WEB,
    "hostname": "DB-02",
    "os_id": "ubuntu",
    "os_version_id": "22.04",
    "environment": "staging",
    "owner": "dba-team",
    "criticality": 1,
    "internet_facing": False,
    "data_sensitivity": "restricted",
    "tags": ["database"],
}


# ---------------------------------------------------------------------------
# Matching


@pytest.mark.parametrize(
    ("text", "web", "db"),
    [
        # The examples from the design.
        ('os = debian and os_version = "12"', True, False),
        ("tag = pci and criticality <= 2", True, False),
        ("environment in (prod, staging) and not internet_facing = true", False, True),
        ('hostname ~ "db-*" or tag = database', False, True),
        # Text: case-insensitive equality; missing equals "".
        ("hostname = WEB-01", True, False),
        ("os != debian", False, True),
        ('owner = ""', True, False),
        ("owner != dba-team", True, False),
        ('business_service = "shop"', True, True),
        ('os_name = "Debian GNU/Linux"', True, True),
        # Glob: case-insensitive, missing never matches.
        ("hostname ~ web-??", True, False),
        ('kernel ~ "6.1.*"', True, True),
        ('virtualization ~ "*"', False, False),
        ('fqdn ~ "*.EXAMPLE.com"', True, True),
        ('hostname ~ "[dw]*"', True, True),
        # Numbers compare numerically.
        ("criticality = 1", False, True),
        ("criticality < 2", False, True),
        ("criticality >= 2", True, False),
        ("criticality > 0", True, True),
        ("criticality != 2", False, True),
        ("criticality in (1, 3)", False, True),
        # Versions compare in version order.
        ("os_version >= 12", True, True),
        ("os_version > 9", True, True),
        ("os_version < 22.10", True, True),
        ("os_version > 22.04", False, False),
        ('os_version = "22.04"', False, True),
        # Ordered sensitivity.
        ("data_sensitivity >= confidential", True, True),
        ("data_sensitivity > confidential", False, True),
        ("data_sensitivity < internal", False, False),
        ("data_sensitivity = RESTRICTED", False, True),
        # Booleans.
        ("internet_facing = true", True, False),
        ("internet_facing = false", False, True),
        ("internet_facing != true", False, True),
        ('internet_facing = "TRUE"', True, False),
        # Tags.
        ("tag = PCI", True, False),
        ("tag != pci", False, True),
        ("tag in (web, database)", True, True),
        ("tag not in (web, database)", False, False),
        ('tag ~ "data*"', False, True),
        ("tags = web", True, False),  # alias
        # in / not in.
        ("environment not in (prod)", False, True),
        ("region in (eu-west)", True, True),
        ("device_type = server", True, True),
        ("device_type in (vm, cloud_instance)", False, False),
        # Precedence: not > and > or; parentheses.
        ("os = ubuntu or os = debian and criticality = 1", False, True),
        ("(os = ubuntu or os = debian) and criticality = 1", False, True),
        ("(os = ubuntu or os = debian) and criticality = 2", True, False),
        ("not os = debian and not os = ubuntu", False, False),
        ("not (os = debian or os = ubuntu)", False, False),
        ("not not tag = pci", True, False),
        ("((((tag = pci))))", True, False),
        # Keywords and field names ignore case; aliases.
        ("OS = debian AND NOT Tag = database", True, False),
        ("os_id = ubuntu", False, True),
        ("os_version_id = 12", True, False),
        ("source = agent and status = active", True, True),
    ],
)
def test_matches(text: str, web: bool, db: bool) -> None:
    query = parse(text)
    assert query.matches(WEB) is web
    assert query.matches(DB) is db


def test_missing_keys_are_missing_values() -> None:
    assert parse('owner = ""').matches({})
    assert not parse("criticality <= 4").matches({})
    assert not parse("tag = pci").matches({})
    assert parse("tag != pci").matches({})
    assert not parse("os_version > 1").matches({})
    assert not parse("internet_facing = false").matches({})


def test_tolerates_loosely_typed_values() -> None:
    assert parse("criticality = 2").matches({"criticality": "2"})
    assert not parse("criticality = 2").matches({"criticality": "high"})
    assert parse("internet_facing = true").matches({"internet_facing": 1})
    assert parse("internet_facing = true").matches({"internet_facing": "true"})
    assert not parse("internet_facing = true").matches({"internet_facing": "maybe"})
    assert parse("tag = a").matches({"tags": ("a",)})
    assert not parse("tag = a").matches({"tags": "a"})


def test_columns_lists_what_to_load() -> None:
    query = parse("os = debian and (tag = pci or criticality < 2) and os_version >= 12")
    assert query.columns == {"os_id", "tags", "criticality", "os_version_id"}
    assert query.columns <= QUERY_COLUMNS
    assert {spec.column for spec in FIELDS.values()} == QUERY_COLUMNS


# ---------------------------------------------------------------------------
# Canonical text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ('os = debian and os_version = "12"', "os = debian and os_version = 12"),
        ("OS=debian AND tag=PCI", "os = debian and tag = pci"),
        ("environment in (prod,staging,prod)", "environment in (prod, staging)"),
        ("(os = a and os = b) and os = c", "os = a and os = b and os = c"),
        ("os = a or (os = b or os = c)", "os = a or os = b or os = c"),
        ("(os = a or os = b) and os = c", "(os = a or os = b) and os = c"),
        ("os = a or os = b and os = c", "os = a or os = b and os = c"),
        ("not (os = a and os = b)", "not (os = a and os = b)"),
        ("not (os = a)", "not os = a"),
        ('owner = "Jane Doe"', 'owner = "Jane Doe"'),
        ('owner = "and"', 'owner = "and"'),
        ('owner = "say \\"hi\\" \\\\ bye"', 'owner = "say \\"hi\\" \\\\ bye"'),
        ('owner = ""', 'owner = ""'),
        ("owner = true", "owner = true"),
        ("internet_facing = TRUE", "internet_facing = true"),
        ("criticality <= +2", "criticality <= 2"),
        ('hostname ~ "web-*"', "hostname ~ web-*"),
        ("device_type = VM", "device_type = vm"),
        ("environment NOT IN (dev)", "environment not in (dev)"),
        ("tags in (A, b)", "tag in (a, b)"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    query = parse(text)
    assert query.text == canonical
    assert str(query) == canonical
    assert parse(query.text) == query


def test_queries_are_frozen_values() -> None:
    query = parse("tag = pci")
    assert query == Query(Compare("tag", "=", "pci"))
    assert hash(query) == hash(parse("TAG = PCI"))
    with pytest.raises(AttributeError):
        query.root = Compare("tag", "=", "x")  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("", 1, "expected a field name or '(', found end of query"),
        ("   ", 4, "expected a field name or '('"),
        ("hostnme = web", 1, "unknown field 'hostnme'; valid fields: arch, business_service"),
        ("os = debian and colour = red", 17, "unknown field 'colour'"),
        ("hostname == web", 10, "unknown operator '=='; valid operators: =, !=, <, <=, >, >=, ~"),
        ("hostname <> web", 10, "unknown operator '<>'"),
        ("hostname ! web", 10, "unknown operator '!'"),
        ("hostname web", 10, "expected an operator"),
        ("hostname =", 11, "expected a value"),
        ("hostname = and", 12, "found keyword 'and' (quote it to use it as a value)"),
        ("(os = debian", 13, "unbalanced '(' at position 1: expected ')'"),
        ("((os = debian) and tag = x", 27, "unbalanced '(' at position 1"),
        ("os = debian)", 12, "unbalanced ')': no matching '('"),
        ("os = debian (tag = x)", 13, "expected 'and', 'or' or end of query"),
        ("os = debian tag = x", 13, "expected 'and', 'or' or end of query"),
        ("os = debian and", 16, "expected a field name or '('"),
        ("os = debian or or os = x", 16, "expected a field name or '('"),
        ("not", 4, "expected a field name or '('"),
        ('owner = "unterminated', 9, "unterminated string"),
        ("owner = a & os = b", 11, "unexpected character '&' (use 'and', 'or', 'not')"),
        ("owner = é", 9, "unexpected character 'é'"),
        ("criticality <= high", 16, "field 'criticality' takes a whole number, found 'high'"),
        ("criticality = 1.5", 15, "takes a whole number"),
        ("criticality ~ 1*", 13, "operator '~' (glob) does not apply to number field"),
        ("internet_facing = yes", 19, "field 'internet_facing' takes true or false"),
        ("internet_facing < true", 17, "operator '<' does not apply"),
        ("hostname < web", 10, "ordering works on criticality, data_sensitivity, os_version"),
        ("tag > a", 5, "operator '>' does not apply to field 'tag'"),
        ("device_type >= server", 13, "operator '>=' does not apply"),
        ("data_sensitivity = secret", 20, "takes one of public, internal, confidential"),
        ("device_type in (server, toaster)", 25, "takes one of server, workstation"),
        ('tag = "PCI DSS"', 7, "tag 'PCI DSS' must be 1-63 characters"),
        ("environment in prod", 16, "expected '(' to start the list of values"),
        ("environment in ()", 17, "expected a value"),
        ("environment in (a b)", 19, "expected ',' or ')' in the list of values"),
        ("environment in (a,", 19, "expected a value"),
        ("environment not = a", 17, "expected 'in' after 'not'"),
        ("= web", 1, "expected a field name or '(', found '='"),
        ("and os = x", 1, "expected a field name or '(', found 'and'"),
        ('"hostname" = x', 1, "expected a field name or '(', found \"hostname\""),
    ],
)
def test_errors_say_where_and_what(text: str, position: int, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(text)
    assert caught.value.position == position
    assert f"invalid query at position {position}: " in str(caught.value)
    assert message in str(caught.value)
    assert isinstance(caught.value, InvalidInput)


def test_unknown_field_lists_every_valid_field() -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse("colour = red")
    for name in FIELDS:
        assert name in str(caught.value)
    assert caught.value.expected == "a field name"


def test_length_limit() -> None:
    long_value = "x" * (MAX_QUERY_LENGTH - len("owner = "))
    assert parse(f"owner = {long_value}").matches({"owner": long_value})
    with pytest.raises(QuerySyntaxError, match="query is 2001 characters long; the limit is 2000"):
        parse(f"owner = {long_value}y")


def test_nesting_limit() -> None:
    assert parse("(" * 40 + "os = x" + ")" * 40).matches({"os_id": "x"})
    with pytest.raises(QuerySyntaxError, match="nests deeper than 50 levels"):
        parse("(" * 60 + "os = x" + ")" * 60)
    with pytest.raises(QuerySyntaxError, match="nests deeper than 50 levels"):
        parse("not " * 300 + "os = x")


# ---------------------------------------------------------------------------
# Properties

_TEXT_ALPHABET = st.sampled_from([*'abcXYZ019 -_.*?"\\é()=,', "and", "or", "not", "in"])
_texts = st.lists(_TEXT_ALPHABET, max_size=6).map("".join)
_tags = st.from_regex(r"[a-z0-9][a-z0-9_.:/=-]{0,8}", fullmatch=True)


def _values(spec: FieldSpec, op: str) -> st.SearchStrategy[Any]:
    if spec.kind is FieldKind.NUMBER:
        return st.integers(-5, 10)
    if spec.kind is FieldKind.BOOLEAN:
        return st.booleans()
    if op == "~":
        return _texts
    if spec.kind is FieldKind.ENUM:
        return st.sampled_from(spec.choices)
    if spec.kind is FieldKind.TAG:
        return _tags
    return _texts


def _operators(spec: FieldSpec) -> list[str]:
    ops = ["=", "!="]
    if spec.kind in (FieldKind.NUMBER, FieldKind.VERSION) or spec.ordered:
        ops += ["<", "<=", ">", ">="]
    if spec.kind not in (FieldKind.NUMBER, FieldKind.BOOLEAN):
        ops.append("~")
    return ops


@st.composite
def _comparisons(draw: st.DrawFn) -> Node:
    spec = draw(st.sampled_from(sorted(FIELDS.values(), key=lambda s: s.name)))
    if draw(st.booleans()):
        op = draw(st.sampled_from(_operators(spec)))
        return Compare(spec.name, op, draw(_values(spec, op)))
    values = draw(st.lists(_values(spec, "in"), min_size=1, max_size=3, unique=True))
    return InList(spec.name, tuple(values), draw(st.booleans()))


_nodes: st.SearchStrategy[Node] = st.recursive(
    _comparisons(),
    lambda children: st.one_of(
        children.map(Not),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    ),
    max_leaves=8,
)

_attr_text = st.one_of(st.none(), _texts)
_assets = st.fixed_dictionaries(
    {
        **{
            spec.column: _attr_text
            for spec in FIELDS.values()
            if spec.kind in (FieldKind.TEXT, FieldKind.VERSION)
        },
        "criticality": st.integers(-1, 6),
        "internet_facing": st.booleans(),
        "data_sensitivity": st.one_of(
            st.none(), st.sampled_from(FIELDS["data_sensitivity"].choices)
        ),
        "device_type": st.sampled_from(FIELDS["device_type"].choices),
        "tags": st.lists(_tags, max_size=3),
    }
)


def _flatten(node: Node) -> Node:
    """What the parser builds: nested and/or of the same kind flattened."""
    if isinstance(node, Not):
        return Not(_flatten(node.operand))
    if isinstance(node, And | Or):
        flat: list[Node] = []
        for operand in map(_flatten, node.operands):
            if isinstance(operand, And | Or) and type(operand) is type(node):
                flat.extend(operand.operands)
            else:
                flat.append(operand)
        return type(node)(tuple(flat))
    return node


@settings(max_examples=300, deadline=None)
@given(_nodes, st.lists(_assets, min_size=1, max_size=4))
def test_canonical_text_round_trips(node: Node, assets: list[dict[str, Any]]) -> None:
    query = Query(node)
    parsed = parse(query.text)
    assert parsed == Query(_flatten(node))
    assert parsed.text == Query(_flatten(node)).text
    assert parse(parsed.text) == parsed
    for attrs in assets:
        assert parsed.matches(attrs) == query.matches(attrs)


@settings(max_examples=200, deadline=None)
@given(_nodes, _assets)
def test_not_negates_and_de_morgan_holds(node: Node, attrs: dict[str, Any]) -> None:
    query = Query(node)
    assert Query(Not(node)).matches(attrs) is not query.matches(attrs)
    other = parse("tag = pci")
    both = Query(And((node, other.root))).matches(attrs)
    either_not = Query(Or((Not(node), Not(other.root)))).matches(attrs)
    assert both is not either_not


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_a_query_error(text: str) -> None:
    position = None
    try:
        query = parse(text)
    except QuerySyntaxError as exc:
        position = exc.position
    if position is None:
        assert parse(query.text) == query
    else:
        assert 1 <= position <= len(text) + 1
