"""The one KEY=VALUE parser: the same text gives the same value wherever convzoo takes one."""

import pytest

from convzoo.core.options import parse_assignment, parse_assignments, parse_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8", 8),
        ("0.5", 0.5),
        ("-3", -3),
        ("True", True),
        ("true", True),
        ("false", False),
        ("null", None),
        ("None", None),
        ("'all'", "all"),
        ("all", "all"),
        ("[1, 1, 1]", (1, 1, 1)),
        ("(7, 9)", (7, 9)),
        ("[true, null]", (True, None)),
        ('{"a": [1, 2]}', {"a": (1, 2)}),
        ("", ""),
        ("hello world", "hello world"),
        ("1e-3", 1e-3),
        ("__import__('os')", "__import__('os')"),  # not a literal: kept as text, never evaluated
    ],
)
def test_parse_value(text, expected):
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_parse_assignment_needs_an_identifier_key():
    assert parse_assignment("rank=8") == ("rank", 8)
    assert parse_assignment("expr=a=b") == ("expr", "a=b")
    for bad in ("rank", "=8", "2x=1", "a-b=1"):
        with pytest.raises(ValueError, match=rf"expected KEY=VALUE such as rank=8, got {bad!r}"):
            parse_assignment(bad)


def test_parse_assignments_refuses_a_key_given_twice():
    assert parse_assignments(["a=1", "b=x"]) == {"a": 1, "b": "x"}
    with pytest.raises(ValueError, match=r"a is given twice \(a=1 and 'a=2'\)"):
        parse_assignments(["a=1", "a=2"])
