"""errors.quote: user input in messages is shown by repr, shortened, so messages stay one short line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from thermo_cli.errors import quote


def test_short_text_is_its_repr():
    assert quote("abc") == "'abc'"
    assert quote("") == "''"
    assert quote("a'b\n") == repr("a'b\n")


def test_long_text_keeps_start_end_and_length():
    text = "a" * 50 + "m" * (1 << 20) + "z" * 50
    shown = quote(text)
    assert shown.startswith("'aaaa") and shown.endswith("zz' (1048676 characters)")
    assert "…" in shown and len(shown) < 120


def test_other_values_are_their_repr_shortened():
    assert quote(5) == "5" and quote(None) == "None" and quote(b"x") == "b'x'"
    assert len(quote(list(range(10_000)))) <= 81
    assert len(quote("x" * 10_000, limit=20)) < 50


@given(st.text(max_size=300), st.integers(1, 200))
def test_never_much_longer_than_the_limit(text, limit):
    shown = quote(text, limit)
    assert "\n" not in shown
    assert len(shown) <= 10 * (limit + 2) + 40 if len(text) > limit else shown == repr(text)
