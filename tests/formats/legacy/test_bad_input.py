"""Bad legacy input gives one LegacyFormatError naming the JSON path — never anything else."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.formats.legacy._fixtures import fixture_bytes
from thermo_cli.codec.timestamps import parse_rfc3339
from thermo_cli.errors import LegacyFormatError, LimitExceededError
from thermo_cli.formats.legacy import load_legacy, load_legacy_file, verify_legacy
from thermo_cli.formats.legacy.engram import load_engram
from thermo_cli.formats.legacy.jsondoc import MAX_CUSTOM_DEPTH

SMALL = json.loads(fixture_bytes("v0.5", "small.thermo"))
FOUR = json.loads(fixture_bytes("v0.5", "fourtemp.thermo"))


def _doc(base: dict | None = None) -> dict:
    return json.loads(json.dumps(SMALL if base is None else base))


def _bytes(doc: object) -> bytes:
    return json.dumps(doc, indent=2, ensure_ascii=False).encode()


def _error(data: bytes) -> LegacyFormatError:
    with pytest.raises(LegacyFormatError) as info:
        load_legacy(data, source="old.thermo")
    assert "\n" not in str(info.value)
    return info.value


def _set(doc: dict, path: tuple, value: object) -> dict:
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


def _drop(doc: dict, path: tuple) -> dict:
    node = doc
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return doc


D3 = ("dirty_chain", "deltas", 3)


def test_the_message_names_the_path_and_the_file():
    doc = _doc()
    doc["dirty_chain"]["deltas"][3]["value"] = [7] * 17 + [300, 1]
    err = _error(_bytes(doc))
    assert err.path == "dirty_chain.deltas[3].value[17]"
    assert err.reason == "300 is not a byte (0..255)"
    assert str(err) == "old.thermo: dirty_chain.deltas[3].value[17]: 300 is not a byte (0..255)"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (-1, "-1 is not a byte (0..255)"),
        (256, "256 is not a byte (0..255)"),
        (1.5, "1.5 is not a byte (0..255)"),
        (1.0, "1.0 is not a byte (0..255)"),
        (True, "true is not a byte (0..255)"),
        (None, "null is not a byte (0..255)"),
        ("7", 'string "7" is not a byte (0..255)'),
        ([1], "an array is not a byte (0..255)"),
        (10**30, "1e+30 is not a byte (0..255)"),
    ],
)
def test_every_kind_of_non_byte_in_a_value_array(bad, reason):
    doc = _doc()
    doc["dirty_chain"]["deltas"][1]["value"][4] = bad
    err = _error(_bytes(doc))
    assert (err.path, err.reason) == ("dirty_chain.deltas[1].value[4]", reason)


def test_non_byte_in_an_entry_value_names_the_entry_key():
    doc = _doc(FOUR)
    doc["cold_entries"]["direct/cold"]["value"][2] = 999
    err = _error(_bytes(doc))
    assert err.path == 'cold_entries["direct/cold"].value[2]'


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("name",), "name"),
        (("dirty_chain",), "dirty_chain"),
        (("dirty_chain", "deltas"), "dirty_chain.deltas"),
        ((*D3, "hash"), "dirty_chain.deltas[3].hash"),
        ((*D3, "metadata", "source"), "dirty_chain.deltas[3].metadata.source"),
        ((*D3, "metadata", "timestamp"), "dirty_chain.deltas[3].metadata.timestamp"),
        (("thermal_config", "decay_rates"), "thermal_config.decay_rates"),
        (("consolidation_policy", "enable_pruning"), "consolidation_policy.enable_pruning"),
        (("metadata", "total_deltas"), "metadata.total_deltas"),
        (("plasticity_rule", "learning_rate"), "plasticity_rule.learning_rate"),
    ],
)
def test_missing_field(path, where):
    err = _error(_bytes(_drop(_doc(), path)))
    assert (err.path, err.reason) == (where, "missing field")


def test_optional_fields_and_entry_maps_may_be_missing():
    doc = _doc(FOUR)
    for name in ("warm_entries", "cool_entries"):
        del doc[name]
    for d in doc["dirty_chain"]["deltas"]:
        del d["prev_hash"]
        del d["metadata"]["custom"], d["metadata"]["ternary_strength"], d["metadata"]["observation_count"]
    del doc["metadata"]["custom"], doc["dirty_chain"]["head_hash"]
    doc["dirty_chain"]["deltas"] = doc["dirty_chain"]["deltas"][:1]
    tg = load_legacy(_bytes(doc))
    assert tg.records[0].prev_hash is None and tg.extras["legacy"]["head_hash"] is None
    assert verify_legacy(tg).ok


@pytest.mark.parametrize(
    ("path", "value", "where", "reason"),
    [
        (
            (*D3, "metadata", "strength"),
            "1.0",
            "dirty_chain.deltas[3].metadata.strength",
            'expected a number, got string "1.0"',
        ),
        (
            (*D3, "metadata", "strength"),
            1e39,
            "dirty_chain.deltas[3].metadata.strength",
            "1e+39 is outside the float32 range",
        ),
        (
            (*D3, "metadata", "observation_count"),
            -1,
            "dirty_chain.deltas[3].metadata.observation_count",
            "-1 is negative (expected an unsigned integer)",
        ),
        (
            (*D3, "metadata", "observation_count"),
            2.5,
            "dirty_chain.deltas[3].metadata.observation_count",
            "expected an unsigned integer, got 2.5",
        ),
        (
            (*D3, "metadata", "observation_count"),
            True,
            "dirty_chain.deltas[3].metadata.observation_count",
            "expected an unsigned integer, got true",
        ),
        (
            ("metadata", "total_deltas"),
            2**64,
            "metadata.total_deltas",
            "expected an unsigned integer, got 1.8446744073709552e+19",
        ),
        (
            ("metadata", "total_deltas"),
            -5,
            "metadata.total_deltas",
            "-5 is negative (expected an unsigned integer)",
        ),
        (
            (*D3, "delta_type"),
            "Destroy",
            "dirty_chain.deltas[3].delta_type",
            "unknown delta type 'Destroy' (expected Create, Update, Delete or Merge)",
        ),
        (
            (*D3, "metadata", "ternary_strength"),
            1,
            "dirty_chain.deltas[3].metadata.ternary_strength",
            'expected "Pos", "Zero", "Neg" or null, got 1',
        ),
        (
            (*D3, "metadata", "timestamp"),
            "yesterday",
            "dirty_chain.deltas[3].metadata.timestamp",
            "not an RFC 3339 timestamp: 'yesterday'",
        ),
        (
            (*D3, "metadata", "timestamp"),
            1795363590,
            "dirty_chain.deltas[3].metadata.timestamp",
            "expected a string, got 1795363590",
        ),
        ((*D3, "key"), "", "dirty_chain.deltas[3].key", "must not be empty"),
        (
            (*D3, "key"),
            "k" * 5000,
            "dirty_chain.deltas[3].key",
            "5000 bytes exceeds the maximum of 4096 bytes",
        ),
        (
            (*D3, "value"),
            "aGVsbG8=",
            "dirty_chain.deltas[3].value",
            'expected an array of bytes (0..255), got string "aGVsbG8="',
        ),
        ((*D3, "prev_hash"), 7, "dirty_chain.deltas[3].prev_hash", "expected a string, got 7"),
        ((*D3,), [], "dirty_chain.deltas[3]", "expected a JSON object, got an array"),
        (("dirty_chain", "deltas"), {}, "dirty_chain.deltas", "expected a JSON array, got an object"),
        (("hot_entries",), [], "hot_entries", "expected a JSON object, got an array"),
        (
            ("plasticity_rule", "policy"),
            "Hebbian",
            "plasticity_rule.policy",
            "unknown policy 'Hebbian' (expected STDP, Replace, EMA, Bayesian or WTA)",
        ),
        (
            ("consolidation_policy", "triggers", 0),
            {"Weekly": 1},
            "consolidation_policy.triggers[0]",
            "unknown trigger 'Weekly' (expected DeltaCount, TimePeriod, DirtySize or Manual)",
        ),
        (
            ("consolidation_policy", "triggers", 1),
            {"TimePeriod": {"hours": -24}},
            "consolidation_policy.triggers[1].TimePeriod.hours",
            "-24 is negative (expected an unsigned integer)",
        ),
        (
            ("consolidation_policy", "triggers", 1),
            "manual",
            "consolidation_policy.triggers[1]",
            'expected "Manual" or a one-member object such as {"DeltaCount": 1000}, got string "manual"',
        ),
        (
            ("thermal_config", "decay_rates"),
            [0.1, 0.2],
            "thermal_config.decay_rates",
            "expected 4 elements, got 2",
        ),
        (
            ("thermal_config", "min_observations", 3),
            2**64,
            "thermal_config.min_observations[3]",
            "expected an unsigned integer, got 1.8446744073709552e+19",
        ),
        (
            ("thermal_config", "allow_demotion", 0),
            0,
            "thermal_config.allow_demotion[0]",
            "expected true or false, got 0",
        ),
        (("name",), None, "name", "expected a string, got null"),
    ],
)
def test_wrong_values(path, value, where, reason):
    err = _error(_bytes(_set(_doc(), path, value)))
    assert (err.path, err.reason) == (where, reason)


def test_entry_key_must_match_its_map_key():
    doc = _doc(FOUR)
    doc["hot_entries"]["shadow"]["key"] = "other"
    err = _error(_bytes(doc))
    assert err.path == 'hot_entries["shadow"].key'


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"not json",
        b"[1, 2",
        b'{"id": }',
        b"\xff\xfe{}",
        b'{"name": "\xc3\x28"}',
        fixture_bytes("v0.5", "small.thermo")[:5000],
    ],
)
def test_malformed_json(data):
    err = _error(data)
    assert err.reason.startswith("invalid JSON")
    assert err.path.startswith("line ")


def test_lone_surrogate_escape_is_refused():
    data = fixture_bytes("v0.5", "small.thermo").replace(b'"key": "greeting"', b'"key": "gr\\ud800"', 1)
    assert _error(data).reason.startswith("invalid JSON")


@pytest.mark.parametrize("root", [b"[]", b"null", b"3", b'"thermogram"'])
def test_top_level_must_be_an_object(root):
    err = _error(root)
    assert err.path == "$"


def test_custom_nesting_is_capped():
    deep: object = 1
    for _ in range(MAX_CUSTOM_DEPTH + 1):
        deep = [deep]
    doc = _set(_doc(), (*D3, "metadata", "custom"), deep)
    with pytest.raises(LimitExceededError, match=r"dirty_chain\.deltas\[3\]\.metadata\.custom"):
        load_legacy(_bytes(doc))
    ok: object = 1
    for _ in range(MAX_CUSTOM_DEPTH):
        ok = {"a": ok}
    assert load_legacy(_bytes(_set(_doc(), ("metadata", "custom"), ok))).meta.custom == ok


def test_absurd_json_nesting_is_an_error_not_a_crash():
    with pytest.raises((LegacyFormatError, LimitExceededError)):
        load_legacy(b"[" * 100_000 + b"]" * 100_000)


def test_size_cap():
    data = fixture_bytes("v0.5", "small.thermo")
    with pytest.raises(LimitExceededError, match=r"legacy file (limit|cap)"):
        load_legacy(data, max_bytes=len(data) - 1)
    assert load_legacy(data, max_bytes=len(data)).records


def test_file_size_is_checked_before_reading(tmp_path):
    path = tmp_path / "old.thermo"
    path.write_bytes(fixture_bytes("v0.5", "small.thermo"))
    with pytest.raises(LimitExceededError, match=r"old\.thermo"):
        load_legacy_file(path, max_bytes=100)
    assert len(load_legacy_file(path).records) == 10


def test_byte_order_mark_is_accepted():
    data = fixture_bytes("v0.5", "small.thermo")
    assert load_legacy(b"\xef\xbb\xbf" + data).keys() == load_legacy(data).keys()


# --- the fast path must never change what is read ---------------------------------------


def test_compact_json_reads_the_same_as_pretty():
    data = fixture_bytes("v0.5", "fourtemp.thermo")
    compact = json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False).encode()
    a, b = load_legacy(data), load_legacy(compact)
    for layer in a.layers:
        assert a.layers[layer] == b.layers[layer]
    assert [r.value for r in a.records] == [r.value for r in b.records]


def test_value_arrays_inside_custom_json_are_kept_as_json():
    doc = _doc()
    custom = {"value": [1, 2, 300], "inner": {"value": [], "x": [{"value": [5]}]}, "value2": "value"}
    doc["dirty_chain"]["deltas"][0]["metadata"]["custom"] = custom
    doc["metadata"]["custom"] = {"value": [[1], {"value": [2]}], "s": '"value": [3]'}
    tg = load_legacy(_bytes(doc))
    assert tg.records[0].custom == custom
    assert tg.meta.custom == doc["metadata"]["custom"]
    assert tg.records[0].value == bytes(SMALL["dirty_chain"]["deltas"][0]["value"])


def test_escaped_member_names_and_lookalike_strings():
    data = fixture_bytes("v0.5", "small.thermo")
    escaped = data.replace(b'"value": [', b'"valu\\u0065": [', 1)  # the same member, spelled differently
    assert load_legacy(escaped).records[0].value == load_legacy(data).records[0].value
    doc = _doc()
    doc["dirty_chain"]["deltas"][0]["metadata"]["source"] = "\x00thermo-bytes-0123456789abcdef:0"
    tg = load_legacy(_bytes(doc))
    assert tg.records[0].source == "\x00thermo-bytes-0123456789abcdef:0"


def test_unknown_members_are_ignored_like_serde_does():
    doc = _doc()
    doc["future_field"] = {"value": [1, 2, 3]}
    doc["dirty_chain"]["deltas"][0]["extra"] = True
    assert len(load_legacy(_bytes(doc)).records) == 10


# --- fuzzing ----------------------------------------------------------------------------


SEEDS = [
    fixture_bytes("v0.5", "small.thermo"),
    fixture_bytes("v0.4", "ternary.thermo"),
    fixture_bytes("v0.5", "fourtemp.thermo"),
]


def _load_or_expected_error(data: bytes) -> None:
    try:
        tg = load_legacy(data, source="fuzz.thermo")
    except (LegacyFormatError, LimitExceededError):
        return
    verify_legacy(tg)  # whatever loads also verifies without raising
    tg.keys()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), st.binary(max_size=6)), min_size=1, max_size=4),
)
def test_fuzz_byte_edits(seed, edits):
    data = bytearray(seed)
    for where, kind, chunk in edits:
        i = int(where * (len(data) - 1))
        if kind == 0:
            data[i : i + len(chunk)] = chunk
        elif kind == 1:
            data[i:i] = chunk
        elif kind == 2:
            del data[i : i + 1 + len(chunk) * 50]
        else:
            data[i] ^= 1 << (len(chunk) % 8)
    _load_or_expected_error(bytes(data))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(FOUR)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PATHS), JSON, st.booleans())
def test_fuzz_structure(path, value, delete):
    doc = _doc(FOUR)
    if delete:
        _drop(doc, path)
    else:
        _set(doc, path, value)
    _load_or_expected_error(json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None)
@given(JSON)
def test_fuzz_any_json_document(value):
    data = json.dumps(value).encode()
    _load_or_expected_error(data)
    with contextlib.suppress(LegacyFormatError, LimitExceededError):
        load_engram(data)


# --- timestamps outside 64-bit nanoseconds (fuzz finding 2) -----------------------------------

LAYER_FIELDS = ("hot_entries", "warm_entries", "cool_entries", "cold_entries")
_OUT_OF_RANGE = (
    "1500-01-01T00:00:00Z",
    "1677-09-21T00:12:43.145224191Z",
    "2262-04-11T23:47:16.854775808Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+00:00",
)


@pytest.mark.parametrize("text", _OUT_OF_RANGE)
@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("metadata", "created_at"), "metadata.created_at"),
        (("metadata", "last_consolidation"), "metadata.last_consolidation"),
        ((*D3, "metadata", "timestamp"), "dirty_chain.deltas[3].metadata.timestamp"),
    ],
)
def test_timestamps_outside_64_bit_nanoseconds_are_refused_naming_the_path(text, path, where):
    err = _error(_bytes(_set(_doc(), path, text)))
    assert err.path == where
    assert err.reason == (
        f"{text!r} is outside the supported range 1677-09-21..2262-04-11 (64-bit nanoseconds)"
    )


def test_an_entry_updated_before_1677_is_refused_naming_the_path():
    doc = _doc(FOUR)
    layer = next(name for name in LAYER_FIELDS if doc[name])
    key = next(iter(doc[layer]))
    doc[layer][key]["updated_at"] = "1013-01-01T00:00:00Z"
    err = _error(_bytes(doc))
    assert err.path == f'{layer}["{key}"].updated_at' and "1677-09-21..2262-04-11" in err.reason


@pytest.mark.parametrize(
    "text", ["1677-09-21T00:12:43.145224192Z", "2262-04-11T23:47:16.854775807Z", "1900-01-01T00:00:00Z"]
)
def test_timestamps_at_the_edges_of_the_range_load(text):
    tg = load_legacy(_bytes(_set(_doc(), ("metadata", "created_at"), text)))
    assert tg.meta.created_at_ns == parse_rfc3339(text)


def test_engram_export_with_a_year_1013_timestamp_is_refused():
    doc = json.loads(fixture_bytes("v0.5", "export_small.json"))
    doc["metadata"]["last_consolidation"] = "1013-11-22T16:06:30.479889352+00:00"
    with pytest.raises(LegacyFormatError) as info:
        load_engram(json.dumps(doc).encode(), source="e.json")
    assert info.value.path == "metadata.last_consolidation"
    assert "outside the supported range" in str(info.value)


# --- messages stay short for huge input (fuzz finding 3) ---------------------------------------


def test_a_megabyte_key_is_shortened_in_the_path_and_the_message():
    doc = _doc(FOUR)
    layer = next(name for name in LAYER_FIELDS if doc[name])
    big = "k" * (1 << 20)
    doc[layer][big] = doc[layer].pop(next(iter(doc[layer])))
    doc[layer][big]["key"] = big
    err = _error(_bytes(doc))
    assert len(str(err)) < 400 and err.path.startswith(f'{layer}["kkkk') and "…" in err.path
    assert err.path.endswith('kkkk"].key')


def test_a_megabyte_timestamp_or_delta_type_is_quoted_briefly():
    for path, value in (
        ((*D3, "metadata", "timestamp"), "x" * (1 << 20)),
        ((*D3, "delta_type"), "Q" * (1 << 20)),
    ):
        err = _error(_bytes(_set(_doc(), path, value)))
        assert len(str(err)) < 400 and "1048576 characters" in str(err)
