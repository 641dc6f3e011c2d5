"""The piecewise JSON reader: values that straddle chunks, errors with positions,
limits."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.feeds._jsonstream import DocumentTooLarge, JsonReader, JsonStreamError

ITEMS: list[dict[str, object]] = [
    {"id": i, "name": f"n{i}", "tags": ["a", "b"] * i} for i in range(20)
]
DOC: dict[str, object] = {
    "count": 12345678901234567890,
    "pi": -3.14e-10,
    "flags": [True, False, None],
    "text": 'é "quoted" \\ \u2028 ' + "x" * 50,
    "items": ITEMS,
    "empty": [],
    "tail": {},
}


def reader(text: str | bytes, chunk: int = 7, limit: int = 1 << 30) -> JsonReader:
    data = text.encode() if isinstance(text, str) else text
    return JsonReader(io.BytesIO(data), limit, chunk=chunk)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
def test_members_and_expanded_array_at_any_chunk_size(chunk: int, indent: int | None) -> None:
    text = json.dumps(DOC, indent=indent, ensure_ascii=False)
    got = list(reader(text, chunk).members(expand={"items", "empty"}))
    assert got == [
        ("count", None, DOC["count"]),
        ("pi", None, DOC["pi"]),
        ("flags", None, DOC["flags"]),
        ("text", None, DOC["text"]),
        ("items", None, []),
        *(("items", i, item) for i, item in enumerate(ITEMS)),
        ("empty", None, []),
        ("tail", None, {}),
    ]
    assert reader(text, chunk).load() == DOC


def test_items_of_one_array_with_the_other_members_as_header() -> None:
    header: dict[str, object] = {}
    items = list(reader(json.dumps(DOC), 5).items_of("items", header))
    assert items == list(enumerate(ITEMS))
    assert header == {k: v for k, v in DOC.items() if k != "items"} | {"items": []}
    # A member of that name that is not an array is header, not items.
    header = {}
    assert list(reader('{"items": {"a": 1}, "n": 2}').items_of("items", header)) == []
    assert header == {"items": {"a": 1}, "n": 2}


@settings(max_examples=60, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=5), children, max_size=4)
        ),
        max_leaves=20,
    ),
    chunk=st.integers(min_value=1, max_value=16),
)
def test_load_roundtrips(value: object, chunk: int) -> None:
    assert reader(json.dumps(value), chunk).load() == value


def test_array_items_and_bom() -> None:
    r = reader(b'\xef\xbb\xbf [1, 22, 333 ,\n{"a": [4]}]  \n', chunk=2)
    assert r.first_char() == "["
    assert list(r.array_items()) == [1, 22, 333, {"a": [4]}]
    r.end()


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ('{"a": 1,\n "b": tru}', "Expecting value", 2, 7),
        ('{"a": 1\n "b": 2}', "expected ',' or '}', found '\"'", 2, 2),
        ('{"a": "never ends', "Unterminated string starting at", 1, 7),
        ("[1, 2", "Expecting ',' delimiter", 1, 6),
        ('{"a": 1} x', "extra data after the JSON document", 1, 10),
        ("{1: 2}", "expected a member name in double quotes", 1, 2),
        ("", "expected a value, found the end of the document", 1, 1),
    ],
)
def test_errors_have_positions(text: str, message: str, line: int, column: int) -> None:
    r = reader(text, chunk=3)
    walk = text.startswith("{") and "extra" not in message
    with pytest.raises(JsonStreamError) as caught:
        list(r.members()) if walk else r.load()
    assert caught.value.message.startswith(message)
    assert (caught.value.line, caught.value.column) == (line, column)


def test_error_position_after_many_chunks() -> None:
    lines = [json.dumps({"id": i}) for i in range(1000)]
    lines[700] = '{"id": 700, "x": nope}'
    text = "[\n" + ",\n".join(lines) + "\n]"
    with pytest.raises(JsonStreamError) as caught:
        list(reader(text, chunk=50).array_items())
    assert (caught.value.line, caught.value.column) == (702, 18)


def test_not_utf8() -> None:
    with pytest.raises(JsonStreamError, match="not UTF-8 text"):
        reader(b'{"a": "\xff"}').load()


def test_limit() -> None:
    text = json.dumps(DOC)
    with pytest.raises(DocumentTooLarge, match="larger than the 100 bytes limit"):
        reader(text, chunk=64, limit=100).load()
    assert reader(text, chunk=64, limit=len(text.encode())).load() == DOC
