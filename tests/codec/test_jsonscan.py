"""JSON containers are counted on the bytes, strings excluded, before orjson builds them."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.codec.jsonscan import check_json_containers, json_containers
from thermo_cli.errors import LimitExceededError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text(alphabet='ab{}[]"\\ ', max_size=8),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text('{[]}"', max_size=4), inner, max_size=5)
    ),
    max_leaves=60,
)


def containers(v: object) -> int:
    if isinstance(v, dict):
        return 1 + sum(containers(x) for x in v.values())
    if isinstance(v, list):
        return 1 + sum(containers(x) for x in v)
    return 0


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_count_matches_the_parsed_document(v: object) -> None:
    assert json_containers(orjson.dumps(v)) == containers(v)


def test_brackets_in_strings_do_not_count() -> None:
    data = orjson.dumps({"a": "{[{[" * 100})
    check_json_containers(data, 1, "doc")  # the bound is over, the exact count is 1


def test_many_empty_objects_are_refused_naming_the_cap() -> None:
    data = b"[" + b",".join([b"{}"] * 1000) + b"]"
    with pytest.raises(LimitExceededError, match=r"doc: 1001 JSON objects.*max_json_containers=1000"):
        check_json_containers(data, 1000, "doc")
