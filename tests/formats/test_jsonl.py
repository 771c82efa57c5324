"""The JSONL delta stream parser: every value form, every field rule, caps, round trips."""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import math
import struct

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.codec.tensors import DTYPES
from thermo_cli.errors import LimitExceededError, ValidationError
from thermo_cli.formats import jsonl
from thermo_cli.model import MAX_KEY_BYTES, Delta, DeltaType, Ternary, f32


def one(line: str | bytes, **kw) -> Delta:
    deltas = jsonl.parse_text(line, **kw)
    assert len(deltas) == 1
    return deltas[0]


def error_of(text: str | bytes, **kw) -> str:
    with pytest.raises((ValidationError, LimitExceededError)) as info:
        jsonl.parse_text(text, **kw)
    return str(info.value)


# --- value forms -----------------------------------------------------------------------------


def test_text_value_and_defaults():
    d = one('{"op": "update", "key": "k", "value": "héllo", "strength": 0.8, "source": "miner"}')
    assert d.delta_type is DeltaType.UPDATE
    assert d.key == "k"
    assert d.value == "héllo".encode()
    assert d.strength == f32(0.8)
    assert d.source == "miner"
    assert d.prev_hash is None and d.hash is None
    assert d.ternary is None and d.observation_count is None and d.custom is None
    assert len(d.id) == 36 and d.id[14] == "4" and d.id[19] in "89ab"


def test_default_strength_and_source():
    d = one('{"op": "create", "key": "k", "value": ""}', source="cli")
    assert d.strength == 1.0
    assert d.source == "cli"
    assert d.value == b""


def test_b64_hex_and_byte_list_values():
    raw = bytes(range(256))
    b64 = base64.b64encode(raw).decode()
    assert one(f'{{"op": "create", "key": "a", "value": {{"b64": "{b64}"}}}}').value == raw
    assert one(f'{{"op": "create", "key": "a", "value": {{"hex": "{raw.hex()}"}}}}').value == raw
    assert one('{"op": "create", "key": "a", "value": [0, 1, 255]}').value == b"\x00\x01\xff"


def test_float32_tensor_from_data():
    d = one(
        '{"op": "create", "key": "w",'
        ' "value": {"dtype": "f32", "shape": [2, 2], "data": [[1, 2.5], [-3, 0]]}}'
    )
    assert d.tensor is not None
    assert d.tensor.dtype == "F32" and d.tensor.shape == (2, 2) and d.tensor.encoding == "raw"
    assert np.frombuffer(d.value, "<f4").tolist() == [1.0, 2.5, -3.0, 0.0]


@pytest.mark.parametrize(
    ("dtype", "data", "np_dtype"),
    [
        ("F64", [1.5, -2.25], "<f8"),
        ("f16", [0.5, 2.0], "<f2"),
        ("int8", [-128, 127], "i1"),
        ("u16", [0, 65535], "<u2"),
        ("I64", [-(2**63), 2**63 - 1], "<i8"),
        ("uint64", [0, 2**64 - 1], "<u8"),
        ("bool", [True, False], "?"),
        ("bool", [1, 0], "?"),
        ("i32", [7, -7], "<i4"),
    ],
)
def test_tensor_dtypes_from_data(dtype, data, np_dtype):
    line = orjson.dumps({"op": "create", "key": "t", "value": {"dtype": dtype, "shape": [2], "data": data}})
    d = one(line)
    assert d.value == np.asarray(data, dtype=np_dtype).tobytes()


def test_bf16_rounds_to_nearest_even():
    d = one(
        '{"op": "create", "key": "t",'
        ' "value": {"dtype": "bf16", "shape": [3], "data": [1.0, -2.0, 1.00390625]}}'
    )
    assert d.tensor.dtype == "BF16"
    # 1.0 = 0x3f80, -2.0 = 0xc000; 1.00390625 is exactly half-way → even (0x3f80)
    assert struct.unpack("<3H", d.value) == (0x3F80, 0xC000, 0x3F80)


def test_tensor_from_b64_and_empty_tensor():
    arr = np.arange(6, dtype="<f4")
    b64 = base64.b64encode(arr.tobytes()).decode()
    d = one(f'{{"op": "create", "key": "t", "value": {{"dtype": "F32", "shape": [2, 3], "b64": "{b64}"}}}}')
    assert d.value == arr.tobytes() and d.tensor.shape == (2, 3)
    empty = one('{"op": "create", "key": "t", "value": {"dtype": "f32", "shape": [0, 4], "data": []}}')
    assert empty.value == b"" and empty.tensor.shape == (0, 4)
    scalar = one('{"op": "create", "key": "t", "value": {"dtype": "f64", "shape": [], "data": [3.5]}}')
    assert struct.unpack("<d", scalar.value) == (3.5,)


def test_f8_from_bytes_or_numbers():
    d = one('{"op": "create", "key": "t", "value": {"dtype": "F8_E4M3", "shape": [2], "hex": "3840"}}')
    assert d.value == b"\x38\x40"
    # 1.0 in E5M2 is 0x3c, -2.0 is 0xc0
    assert (
        one(
            '{"op": "create", "key": "t", "value": {"dtype": "F8_E5M2", "shape": [2], "data": [1, -2]}}'
        ).value
        == b"\x3c\xc0"
    )
    line = '{"op": "create", "key": "t", "value": {"dtype": "c64", "shape": [1], "data": [1]}}'
    assert "need their bytes" in error_of(line)


def test_prepacked_ternary_tensor():
    packed = base64.b64encode(bytes([0b01100001, 0b00000001])).decode()
    line = (
        '{"op": "create", "key": "t", "value": {"dtype": "f32", "shape": [5], "encoding": "ternary",'
        f' "b64": "{packed}", "scales": [0.5]}}}}'
    )
    d = one(line)
    assert d.tensor.encoding == "ternary"
    assert d.tensor.scales == struct.pack("<f", 0.5)
    assert d.value == bytes([0b01100001, 0b00000001])
    assert "packed bytes" in error_of(line.replace(packed, base64.b64encode(b"\x01").decode()))
    per_row = (
        '{"op": "create", "key": "t", "value": {"dtype": "f32", "shape": [2, 2],'
        ' "encoding": "ternary", "hex": "05", "scales": [1, 2], "per_row": true}}'
    )
    assert "2 or more dimensions" in error_of(per_row.replace("[2, 2]", "[4]"))
    assert one(per_row).tensor.per_row is True
    assert "scale(s)" in error_of(per_row.replace("[1, 2]", "[1]"))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('{"dtype": "f32", "shape": [3], "data": [1, 2]}', "2 numbers do not match shape [3]"),
        ('{"dtype": "f32", "shape": [2], "b64": "AAAA"}', "3 bytes do not match dtype F32"),
        ('{"dtype": "f33", "shape": [1], "data": [1]}', "unknown dtype 'f33'"),
        ('{"dtype": "f32", "shape": [-1], "data": []}', "dimensions must be integers >= 0"),
        ('{"dtype": "f32", "shape": [1.5], "data": [1]}', "dimensions must be integers >= 0"),
        ('{"dtype": "f32", "shape": 3, "data": [1]}', "expected a list of dimension sizes"),
        ('{"dtype": "f32", "shape": [1], "data": [1], "b64": "AAAAAA=="}', 'exactly one of "data"'),
        ('{"dtype": "f32", "shape": [1]}', 'exactly one of "data"'),
        ('{"dtype": "f32", "shape": [1], "data": ["x"]}', "must hold only numbers"),
        ('{"dtype": "f32", "shape": [2], "data": [[1], [1, 2]]}', "ragged"),
        ('{"dtype": "f32", "shape": [2, 2], "data": [[1, 2, 3, 4]]}', "nesting [1, 4] does not match"),
        ('{"dtype": "f16", "shape": [1], "data": [1e10]}', "overflows F16"),
        ('{"dtype": "i8", "shape": [1], "data": [200]}', "outside the range of I8"),
        ('{"dtype": "u8", "shape": [1], "data": [-1]}', "outside the range of U8"),
        ('{"dtype": "i32", "shape": [1], "data": [1.5]}', "integers only"),
        ('{"dtype": "i32", "shape": [1], "data": [true]}', "integers only"),
        ('{"dtype": "u64", "shape": [2], "data": [1, 18446744073709551616]}', "outside the range of U64"),
        ('{"dtype": "f32", "shape": [1], "data": [true]}', "numbers only"),
        ('{"dtype": "bool", "shape": [1], "data": [2]}', "true/false"),
        ('{"dtype": "f32", "shape": [1], "data": [1], "zzz": 1}', "unknown tensor field"),
        ('{"dtype": "f32", "shape": [1], "data": [1], "scales": [1]}', 'only for "encoding": "ternary"'),
        ('{"dtype": "f32", "shape": [1], "encoding": "zip", "data": [1]}', 'expected \\"raw\\" or'),
        ('{"dtype": "i8", "shape": [1], "encoding": "ternary", "hex": "01", "scales": [1]}', "float dtype"),
        ('{"b64": "!!!"}', "invalid base64"),
        ('{"hex": "zz"}', "invalid hex"),
        ('{"b64": 5}', "expected base64 text"),
        ('{"text": "x"}', "got an object with keys ['text']"),
        ("[1, 256]", "byte values 0..255"),
        ("[1, true]", "byte values 0..255"),
        ("5", "expected text, bytes or a tensor"),
    ],
)
def test_bad_values(value, reason):
    message = error_of(f'{{"op": "create", "key": "k", "value": {value}}}')
    assert message.startswith("line 1: value")
    assert reason.replace('\\"', '"') in message


# --- other fields ----------------------------------------------------------------------------


def test_every_optional_field():
    d = one(
        '{"op": "merge", "key": "k", "value": "v", "ternary": -1, "observation_count": 7,'
        ' "meta": {"why": ["x", 1]}, "timestamp": "2026-11-22T16:06:30.000000005Z", "id": "abc"}'
    )
    assert d.delta_type is DeltaType.MERGE
    assert d.ternary is Ternary.NEG and d.strength == -1.0
    assert d.observation_count == 7
    assert d.custom == {"why": ["x", 1]}
    assert d.id == "abc"
    assert d.timestamp_ns % 1_000_000_000 == 5


def test_ternary_names_and_explicit_strength():
    assert one('{"op": "update", "key": "k", "value": "", "ternary": "Pos"}').strength == 1.0
    assert one('{"op": "update", "key": "k", "value": "", "ternary": 0, "strength": 0}').strength == 0.0
    assert "its ternary value (1.0)" in error_of(
        '{"op": "update", "key": "k", "value": "", "ternary": 1, "strength": 0.5}'
    )
    assert "expected -1, 0 or +1" in error_of('{"op": "update", "key": "k", "value": "", "ternary": 2}')


def test_custom_is_a_synonym_of_meta():
    assert one('{"op": "create", "key": "k", "value": "", "custom": 5}').custom == 5
    assert "not both" in error_of('{"op": "create", "key": "k", "value": "", "custom": 5, "meta": 6}')


def test_legacy_op_spelling_accepted():
    assert one('{"op": "Create", "key": "k", "value": ""}').delta_type is DeltaType.CREATE


def test_delete_without_value():
    d = one('{"op": "delete", "key": "k"}')
    assert d.delta_type is DeltaType.DELETE and d.value == b"" and d.strength == 1.0
    assert one('{"op": "delete", "key": "k", "value": null}').value == b""
    assert "carries no value" in error_of('{"op": "delete", "key": "k", "value": "x"}')


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-11-22T16:06:30Z", 1795363590 * 10**9),
        ("2026-11-22T16:06:30.120Z", 1795363590 * 10**9 + 120_000_000),
        ("2026-11-22T17:06:30.000001+01:00", 1795363590 * 10**9 + 1000),
        ("2026-11-22T15:36:30.000000005-00:30", 1795363590 * 10**9 + 5),
        ("2026-11-22 16:06:30z", 1795363590 * 10**9),
    ],
)
def test_timestamps(text, ns):
    assert jsonl.parse_timestamp(text) == ns
    assert one(orjson.dumps({"op": "delete", "key": "k", "timestamp": text})).timestamp_ns == ns


def test_integer_timestamp_and_bad_ones():
    assert one('{"op": "delete", "key": "k", "timestamp": 12345}').timestamp_ns == 12345
    for bad, why in [
        ('"2026-11-22T16:06:30"', "timezone-aware"),
        ('"yesterday"', "not an RFC 3339"),
        ('"2026-02-30T00:00:00Z"', "not a valid date"),
        (str(2**63), "out of range"),
        ("true", "expected RFC 3339"),
        ('"2026-01-01T00:00:00+25:00"', "bad UTC offset"),
        ("1.5", "expected RFC 3339"),
    ]:
        assert why in error_of(f'{{"op": "delete", "key": "k", "timestamp": {bad}}}')


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"key": "k", "value": ""}', 'missing field "op"'),
        ('{"op": "upsert", "key": "k", "value": ""}', "op: expected create, update, delete or merge"),
        ('{"op": ["create"], "key": "k", "value": ""}', "op: expected create"),
        ('{"op": "create", "value": ""}', 'missing field "key"'),
        ('{"op": "create", "key": 5, "value": ""}', "key: expected text, got a number"),
        ('{"op": "create", "key": "", "value": ""}', "key: must not be empty"),
        ('{"op": "create", "key": "k"}', 'missing field "value" (required for create)'),
        ('{"op": "create", "key": "k", "value": "", "strength": 1.5}', "within [0, 1]"),
        ('{"op": "create", "key": "k", "value": "", "strength": -0.1}', "within [0, 1]"),
        ('{"op": "create", "key": "k", "value": "", "strength": "high"}', "expected a number"),
        ('{"op": "create", "key": "k", "value": "", "strength": true}', "expected a number"),
        ('{"op": "create", "key": "k", "value": "", "observation_count": -1}', "observation_count"),
        ('{"op": "create", "key": "k", "value": "", "observation_count": 1.0}', "observation_count"),
        ('{"op": "create", "key": "k", "value": "", "source": ""}', "source: expected non-empty text"),
        ('{"op": "create", "key": "k", "value": "", "source": 3}', "source: expected non-empty text"),
        ('{"op": "create", "key": "k", "value": "", "id": ""}', "id: expected non-empty text"),
        ('{"op": "create", "key": "k", "value": "", "vlaue": ""}', "unknown field(s) 'vlaue'"),
        ('["op", "create"]', "expected a JSON object, got an array"),
        ("42", "expected a JSON object, got a number"),
        ('{"op": "create", "key": "k", "value": "x"', "invalid JSON"),
        ("{'op': 'create'}", "invalid JSON"),
        ('{"op": "create", "key": "\\ud800", "value": ""}', "invalid JSON"),
        ('{"op": "create", "key": "k", "value": "", "strength": NaN}', "invalid JSON"),
    ],
)
def test_bad_lines_name_line_and_reason(line, reason):
    message = error_of('{"op": "create", "key": "ok", "value": "fine"}\n\n' + line + "\n")
    assert message.startswith("line 3: "), message
    assert reason in message
    assert "\n" not in message


def test_invalid_utf8_is_refused():
    assert error_of(b'{"op": "create", "key": "k", "value": "\xff"}').startswith("line 1: invalid JSON")


def test_deep_meta_refused():
    deep = "[" * 20 + "]" * 20
    assert "nested deeper" in error_of(f'{{"op": "create", "key": "k", "value": "", "meta": {deep}}}')


def test_error_attributes():
    with pytest.raises(jsonl.LineError) as info:
        jsonl.parse_text('{"op": "create", "key": "k", "value": ""}\n{"op": 1}')
    assert info.value.line == 2
    assert info.value.code == "invalid"


# --- lines and caps --------------------------------------------------------------------------


def test_blank_lines_crlf_bom_and_no_final_newline():
    text = b'\xef\xbb\xbf{"op": "delete", "key": "a"}\r\n   \n\n{"op": "delete", "key": "b"}'
    assert [d.key for d in jsonl.parse_text(text)] == ["a", "b"]


def test_line_numbers_count_blank_lines():
    lines = list(jsonl.iter_lines(io.BytesIO(b"a\n\nb\r\n  \nc")))
    assert lines == [(1, b"a"), (3, b"b"), (5, b"c")]


def test_lines_split_across_blocks():
    chunks = [b'{"op": "del', b'ete", "key": "a"}\n{"op"', b': "delete", "key": "b"}\n']
    assert [d.key for d in jsonl.parse_deltas(chunks)] == ["a", "b"]


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b" ", b"\r\n", b"\t"]), max_size=30).map(
        b"".join
    ),
    cuts=st.lists(st.integers(0, 60), max_size=6),
)
def test_line_blocks_are_the_lines_however_the_input_is_cut(text: bytes, cuts: list[int]):
    """``\\r`` before a newline, blank and whitespace lines, at any chunk boundary (a CR at
    the end of one chunk and its newline at the start of the next included)."""
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    expected = []
    lines = text.split(b"\n")
    for n, line in enumerate(lines, 1):
        if n == len(lines):  # the last line, without a newline: every trailing CR goes
            line = line.rstrip(b"\r")
        line = line[:-1] if line.endswith(b"\r") else line
        if line and not line.isspace():
            expected.append((n, line))
    assert list(jsonl.iter_lines(chunks)) == expected


def test_line_cap_refuses_before_reading_the_whole_line():
    class Endless(io.RawIOBase):
        """A stream of one endless line: the parser must stop after the cap."""

        def __init__(self) -> None:
            self.served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buf) -> int:
            buf[:] = b"x" * len(buf)
            self.served += len(buf)
            return len(buf)

    src = Endless()
    limits = jsonl.Limits(max_line_bytes=3 * 1024 * 1024)
    with pytest.raises(LimitExceededError, match=r"line 1: line longer than the maximum of 3145728 bytes"):
        jsonl.parse_deltas(io.BufferedReader(src, 1 << 16), limits=limits)
    assert src.served <= 5 * 1024 * 1024


def test_line_cap_on_later_line_and_exact_cap():
    ok = b'{"op": "delete", "key": "a"}'
    cap = len(ok)
    assert len(jsonl.parse_text(ok + b"\n" + ok, limits=jsonl.Limits(max_line_bytes=cap))) == 2
    with pytest.raises(LimitExceededError, match="line 2: line longer"):
        jsonl.parse_text(ok + b"\n" + ok + b" ", limits=jsonl.Limits(max_line_bytes=cap))


def test_key_cap():
    big = "k" * (MAX_KEY_BYTES + 1)
    with pytest.raises(LimitExceededError, match=f"line 1: key: {MAX_KEY_BYTES + 1} bytes exceeds"):
        jsonl.parse_text(f'{{"op": "delete", "key": "{big}"}}')
    with pytest.raises(LimitExceededError, match="key: 9 bytes exceeds the maximum of 8"):
        jsonl.parse_text('{"op": "delete", "key": "ééééx"}', limits=jsonl.Limits(max_key_bytes=8))
    assert one(f'{{"op": "delete", "key": "{"é" * (MAX_KEY_BYTES // 2)}"}}').key


def test_limits_validation():
    with pytest.raises(ValidationError):
        jsonl.Limits(max_key_bytes=MAX_KEY_BYTES + 1)
    with pytest.raises(ValidationError):
        jsonl.Limits(max_line_bytes=0)


def test_iter_deltas_is_lazy():
    gen = jsonl.iter_deltas([b'{"op": "delete", "key": "a"}\n', b"not json\n"])
    assert next(gen).key == "a"
    with pytest.raises(ValidationError, match="line 2"):
        next(gen)


def test_ids_are_unique():
    deltas = jsonl.parse_text("".join('{"op": "delete", "key": "k"}\n' for _ in range(5000)))
    assert len({d.id for d in deltas}) == 5000


# --- round trip ------------------------------------------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_json = st.recursive(
    _json_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=10,
)


@st.composite
def deltas(draw) -> Delta:
    op = draw(st.sampled_from(list(DeltaType)))
    key = draw(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20))
    if op is DeltaType.DELETE:
        value = b""
    else:
        value = draw(st.binary(max_size=40) | st.text(max_size=20).map(lambda s: s.encode()))
    ternary = draw(st.none() | st.sampled_from(list(Ternary)))
    strength = float(int(ternary)) if ternary is not None else f32(draw(st.floats(0, 1)))
    return Delta(
        delta_type=op,
        key=key,
        value=value,
        strength=strength,
        timestamp_ns=draw(st.integers(0, 2**63 - 1)),
        source=draw(st.text(min_size=1, max_size=10)),
        id=draw(st.uuids()).hex,
        ternary=ternary,
        observation_count=draw(st.none() | st.integers(0, 2**64 - 1)),
        custom=draw(st.none() | _json),
    )


def _comparable(d: Delta) -> tuple:
    return (
        d.delta_type,
        d.key,
        d.value,
        d.strength,
        d.timestamp_ns,
        d.source,
        d.id,
        d.ternary,
        d.observation_count,
        orjson.dumps(d.custom),
        d.tensor,
    )


@settings(max_examples=200, deadline=None)
@given(deltas())
def test_delta_round_trip(d):
    back = jsonl.parse_text(jsonl.dumps_delta(d))
    assert len(back) == 1
    assert _comparable(back[0]) == _comparable(d)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["F64", "F32", "F16", "I32", "U8", "BOOL", "BF16"]),
    st.lists(st.integers(0, 4), max_size=3),
)
def test_tensor_value_round_trip(dtype, shape):
    numel = math.prod(shape)
    itemsize = DTYPES[dtype].itemsize
    raw = bytes((i * 37) % 256 for i in range(numel * itemsize))
    if dtype == "BOOL":
        raw = bytes(b & 1 for b in raw)
    value, spec = jsonl.decode_value(
        jsonl.encode_value(
            raw,
            jsonl.decode_value({"dtype": dtype, "shape": shape, "b64": base64.b64encode(raw).decode()})[1],
        )
    )
    assert value == raw
    assert spec.dtype == dtype and spec.shape == tuple(shape)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_other_errors(data):
    with contextlib.suppress(ValidationError, LimitExceededError):
        jsonl.parse_text(data)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*sorted(jsonl.DELTA_FIELDS), "x"]), _json, max_size=8))
def test_arbitrary_objects_never_escape_as_other_errors(obj):
    with contextlib.suppress(ValidationError, LimitExceededError):
        jsonl.parse_text(orjson.dumps(obj))


# --- malformed tensor data (fuzz finding 1) and packed sub-byte dtypes ------------------------


@pytest.mark.parametrize(
    ("dtype", "data"),
    [
        ("i8", "[{}]"),
        ("i8", "[null, 1]"),
        ("u64", '[{"a": 1}, 18446744073709551615]'),
        ("i32", '[1, "2"]'),
        ("f32", "[{}]"),
        ("bf16", "[null]"),
        ("bool", "[true, {}]"),
        ("u8", "[[1], {}]"),
        ("i16", "[[]]"),
    ],
)
def test_tensor_data_holding_non_numbers_is_a_line_error(dtype, data):
    line = f'{{"op": "create", "key": "0", "value": {{"dtype": "{dtype}", "shape": [], "data": {data}}}}}'
    message = error_of(line.replace('"shape": []', '"shape": [2]') if "," in data else line)
    assert message.startswith("line 1: value.data: ")


def test_the_fuzz_finding_line_is_refused_with_its_line_number():
    message = error_of('{"op":"create","key":"0","value":{"dtype":"i8","shape":[],"data":[{}]}}')
    assert message == "line 1: value.data: must hold only numbers (or booleans for bool)"


@pytest.mark.parametrize(
    ("value", "reason"),
    [  # numbers orjson cannot carry, reached through objects
        ({"dtype": "f32", "shape": [2], "data": [1, 10**400]}, "overflows F32"),
        ({"dtype": "u64", "shape": [2], "data": [1.5, 10**400]}, "outside the range of U64"),
        ({"dtype": "bf16", "shape": [1], "data": [1e300]}, "overflows BF16"),
        ({"dtype": "f8_e4m3", "shape": [1], "data": [1e6]}, "overflows F8_E4M3"),
        (
            {"dtype": "f32", "shape": [4], "encoding": "ternary", "b64": "AA==", "scales": [10**400]},
            "scale overflows float32",
        ),
        (
            {"dtype": "f32", "shape": [4], "encoding": "ternary", "b64": "AA==", "scales": [1e300]},
            "scale overflows float32",
        ),
    ],
)
def test_numbers_too_large_for_the_dtype_are_refused(value, reason):
    with pytest.raises(ValidationError) as info:
        jsonl.DeltaParser().from_obj(3, {"op": "create", "key": "k", "value": value})
    assert str(info.value).startswith("line 3: value") and reason in str(info.value)


_tensor_leaves = (
    _json_scalars | st.integers() | st.dictionaries(st.text(max_size=3), _json_scalars, max_size=2)
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        ["f32", "f16", "bf16", "f8_e4m3", "f8_e8m0", "i8", "u8", "i64", "u64", "bool", "c64", "f4", "f6_e2m3"]
    ),
    st.lists(st.integers(0, 3), max_size=3),
    st.recursive(_tensor_leaves, lambda kids: st.lists(kids, max_size=4), max_leaves=12),
)
def test_any_tensor_data_is_a_delta_or_a_line_error(dtype, shape, data):
    obj = {"op": "create", "key": "k", "value": {"dtype": dtype, "shape": shape, "data": data}}
    try:
        d = jsonl.DeltaParser().from_obj(1, obj)
    except ValidationError as exc:
        assert str(exc).startswith("line 1: value")
        return
    assert d.tensor is not None and d.tensor.dtype == dtype.upper()


@pytest.mark.parametrize(
    ("dtype", "shape", "nbytes"),
    [
        ("f4", [2, 8], 8),
        ("F4", [3], None),
        ("f4", [4], 2),
        ("f6_e2m3", [4], 3),
        ("F6_E3M2", [2, 6], 9),
        ("f6_e2m3", [3], None),
    ],
)
def test_packed_sub_byte_dtypes_from_bytes(dtype, shape, nbytes):
    raw = bytes(range(nbytes or 5))
    line = orjson.dumps(
        {
            "op": "create",
            "key": "w",
            "value": {"dtype": dtype, "shape": shape, "b64": base64.b64encode(raw).decode()},
        }
    )
    if nbytes is None:
        assert "does not fill whole bytes" in error_of(line)
        return
    d = one(line)
    assert d.value == raw and d.tensor.dtype == dtype.upper() and d.tensor.shape == tuple(shape)
    assert jsonl.decode_value(jsonl.encode_value(d.value, d.tensor)) == (raw, d.tensor)


def test_packed_sub_byte_dtypes_refuse_numbers_and_wrong_sizes():
    message = error_of('{"op": "create", "key": "w", "value": {"dtype": "f4", "shape": [2], "data": [1, 2]}}')
    assert message.startswith("line 1: value.data: F4 packs 4-bit elements") and '"b64" or "hex"' in message
    assert "1 bytes do not match dtype F4" in error_of(
        '{"op": "create", "key": "w", "value": {"dtype": "f4", "shape": [4], "hex": "00"}}'
    )
    assert "float dtype" in error_of(
        '{"op": "create", "key": "w", "value": {"dtype": "f4", "shape": [4], '
        '"encoding": "ternary", "hex": "00", "scales": [1]}}'
    )


# --- timestamps: signed 64-bit nanoseconds (fuzz finding 2) and short messages (finding 3) ------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1900-01-01T00:00:00Z", -2208988800 * 10**9),
        ("1677-09-21T00:12:43.145224192Z", -(2**63)),
        ("2262-04-11T23:47:16.854775807Z", 2**63 - 1),
    ],
)
def test_timestamps_before_1970_within_64_bits(text, ns):
    assert jsonl.parse_timestamp(text) == ns
    assert jsonl.parse_timestamp(ns) == ns
    assert one(orjson.dumps({"op": "delete", "key": "k", "timestamp": text})).timestamp_ns == ns


@pytest.mark.parametrize(
    "bad",
    [
        '"1677-09-21T00:12:43.145224191Z"',
        '"2262-04-11T23:47:16.854775808Z"',
        '"1500-01-01T00:00:00Z"',
        '"9999-12-31T23:59:59Z"',
        str(2**63),
    ],
)
def test_timestamps_outside_64_bits_are_refused(bad):
    message = error_of(f'{{"op": "delete", "key": "k", "timestamp": {bad}}}')
    assert message.startswith("line 1: timestamp: ") and "1677-09-21..2262-04-11" in message
    with pytest.raises(ValidationError, match=r"1677-09-21\.\.2262-04-11"):
        jsonl.parse_timestamp(-(2**63) - 1)


@pytest.mark.parametrize("field", ["op", "id", "timestamp", "ternary", "strength", "observation_count"])
def test_errors_quote_a_megabyte_of_input_briefly(field):
    obj = {"op": "create", "key": "k", "value": "v", field: "x" * (1 << 20)}
    message = error_of(orjson.dumps(obj))
    assert message.startswith(f"line 1: {field}") and len(message) < 300


def test_many_unknown_fields_are_listed_briefly():
    obj = {"op": "create", "key": "k", "value": "v", **{f"f{i}" * 1000: 1 for i in range(1000)}}
    message = error_of(orjson.dumps(obj))
    assert "unknown field(s)" in message and "and 995 more" in message and len(message) < 1000


@pytest.mark.clock
@pytest.mark.parametrize(
    "obj", [{"op": "create", "key": "k", "value": "v"}, {"op": "create", "key": "k", "value": [1]}]
)
def test_a_line_without_timestamp_takes_the_parser_clock(obj, clock):
    """Both the fast path and the general one stamp from the clock, not the wall clock."""
    from thermo_cli.config.clock import fixed_clock

    assert jsonl.DeltaParser(clock=fixed_clock(123)).from_obj(1, obj).timestamp_ns == 123
    parser = jsonl.DeltaParser()  # the context's clock
    clock.advance(7)
    assert parser.from_obj(1, obj).timestamp_ns == clock() and clock() != 123
