"""The JSONL parser and the engine's validator accept and refuse the same deltas.

Both are built from the data model's field checks; these properties catch a fast path or
a JSON-specific branch that drifts from them.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.engine import chain
from thermo_cli.errors import ThermoError
from thermo_cli.formats import jsonl
from thermo_cli.model import Delta, DeltaType, Ternary
from thermo_cli.model.valueclass import replace

T0 = 1_700_000_000 * 10**9
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)
long_text = st.text(alphabet="ab", min_size=250, max_size=260)
labels = text | long_text
keys = text | st.text(alphabet="é", min_size=2040, max_size=2060)
numbers = st.floats(-2, 2, allow_nan=False) | st.integers(-2, 2) | st.sampled_from([0.0, 1.0, 0.5])
json_leaf = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | text


def nested(depth: int) -> st.SearchStrategy:
    """A JSON value ``depth`` containers deep (around the metadata depth cap)."""
    inner: st.SearchStrategy = json_leaf
    for _ in range(depth):
        inner = st.lists(inner, min_size=1, max_size=1) | st.dictionaries(text, inner, min_size=1, max_size=1)
    return inner


@st.composite
def fields(draw) -> dict:
    """Raw delta fields, valid or not, that JSON can carry."""
    out = {"op": draw(st.sampled_from(list(DeltaType))), "key": draw(keys)}
    if out["op"] is not DeltaType.DELETE:
        out["value"] = draw(text)
    for name, strategy in (
        ("strength", numbers),
        ("ternary", st.sampled_from([-1, 0, 1])),
        ("observation_count", st.integers(-3, 2**64 - 1)),
        ("source", labels),
        ("id", labels),
        ("custom", st.integers(0, 18).flatmap(nested)),
        ("timestamp", st.integers(-(2**63) - 2, 2**63 + 1)),
    ):
        if draw(st.booleans()):
            out[name] = draw(strategy)
    return out


def _as_json(f: dict) -> dict:
    obj = {**f, "op": f["op"].label}
    if "custom" in obj:
        obj["meta"] = obj.pop("custom")
    return obj


def _as_delta(f: dict) -> Delta:
    tern = Ternary(f["ternary"]) if "ternary" in f else None
    strength = f.get("strength", 1.0 if tern is None else float(tern))
    return Delta(
        f["op"],
        f["key"],
        f.get("value", "").encode("utf-8"),
        strength,
        f.get("timestamp", T0),
        f.get("source", "thermo"),
        f.get("id", "id-1"),
        tern,
        f.get("observation_count"),
        f.get("custom"),
    )


def _outcome(run) -> object:
    try:
        return run()
    except ThermoError:
        return None


@settings(max_examples=300, deadline=None)
@given(fields())
def test_the_parser_and_the_engine_accept_the_same_deltas(f):
    parsed = _outcome(lambda: jsonl.DeltaParser().from_obj(1, _as_json(f)))
    direct = _as_delta(f)
    accepted = _outcome(lambda: chain.validate_delta(direct))
    assert (parsed is None) == (accepted is None), (parsed, direct)
    if parsed is not None:
        chain.validate_delta(parsed)  # what the parser built passes unchanged
        same = {"timestamp_ns": direct.timestamp_ns, "id": direct.id}
        assert replace(parsed, **same) == direct


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0.0, 0.25, 1.0, 2.0, -0.5]), text, labels)
def test_the_fast_path_admits_nothing_the_checks_refuse(strength, key, source):
    obj = {"op": "update", "key": key, "value": "v", "strength": strength, "source": source}
    parsed = _outcome(lambda: jsonl.DeltaParser().from_obj(1, obj))
    direct = _outcome(lambda: chain.validate_delta(Delta(DeltaType.UPDATE, key, b"v", strength, T0, source)))
    assert (parsed is None) == (direct is None)


def test_a_source_longer_than_an_id_may_be_is_refused_naming_it():
    obj = {"op": "update", "key": "k", "value": "v", "source": "s" * 257}
    try:
        jsonl.DeltaParser().from_obj(3, obj)
    except jsonl.LineError as exc:
        assert str(exc).startswith("line 3: source: expected non-empty text of at most 256 characters")
    else:
        raise AssertionError("a 257-character source was accepted")
