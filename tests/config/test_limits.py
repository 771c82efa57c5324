"""One frozen Limits, set per context with use_limits; readers take it explicitly or from the context."""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from thermo_cli import store
from thermo_cli.config.limits import (
    DEFAULT_LIMITS,
    Limits,
    cap_names,
    current_limits,
    parse_limits,
    process_cap,
    use_limits,
)
from thermo_cli.errors import LimitExceededError, ValidationError
from thermo_cli.formats import jsonl
from thermo_cli.formats.legacy.jsondoc import MAX_LEGACY_BYTES, legacy_cap

MULTICHUNK = Path(__file__).resolve().parents[2] / "format" / "vectors" / "multichunk.thermo"


def test_outside_any_block_the_defaults_are_current():
    assert current_limits() is DEFAULT_LIMITS == Limits()


def test_use_limits_nests_and_restores_even_on_error():
    outer, inner = Limits(max_chunk_bytes=1024), Limits(max_chunk_bytes=2048)
    with use_limits(outer):
        assert current_limits() is outer
        with pytest.raises(RuntimeError), use_limits(inner):
            assert current_limits() is inner
            raise RuntimeError
        assert current_limits() is outer
    assert current_limits() is DEFAULT_LIMITS


def test_limits_are_frozen_and_replace_returns_a_copy():
    small = DEFAULT_LIMITS.replace(max_line_bytes=10)
    assert (small.max_line_bytes, DEFAULT_LIMITS.max_line_bytes) == (10, 64 << 20)
    with pytest.raises(AttributeError):
        small.max_line_bytes = 11  # type: ignore[misc]


@pytest.mark.parametrize(
    ("caps", "message"),
    [
        ({"max_chunk_bytes": 0}, "max_chunk_bytes: must be at least 1"),
        ({"max_key_bytes": 4097}, "max_key_bytes: must be within 1..4096"),
        ({"max_meta_depth": 17}, "max_meta_depth: must be within 1..16"),
    ],
)
def test_a_cap_below_one_or_above_the_formats_own_is_refused(caps, message):
    with pytest.raises(ValidationError, match=message):
        Limits(**caps)


def test_every_cap_is_one_field_and_a_limit_name():
    assert cap_names() == Limits.names()
    assert {"max_legacy_bytes", "max_line_bytes", "max_key_bytes", "max_tensor_dims"} <= set(cap_names())
    with pytest.raises(ValueError, match="max_key_bytes"):
        parse_limits(["max_key_bytes=8K"])


def test_a_thread_starts_with_the_defaults_unless_given_the_context():
    seen: list[Limits] = []
    small = Limits(max_value_bytes=5)
    with use_limits(small):
        t = threading.Thread(target=lambda: seen.append(current_limits()))
        t.start()
        t.join()
        with ThreadPoolExecutor(1) as pool:
            ctx = contextvars.copy_context()
            seen.append(pool.submit(ctx.run, current_limits).result())
    assert seen == [DEFAULT_LIMITS, small]


def test_a_reader_keeps_the_limits_current_when_it_was_opened():
    with use_limits(Limits(max_chunk_bytes=1024)), pytest.raises(LimitExceededError, match="max_chunk_bytes"):
        store.load(MULTICHUNK, layers="full")
    with use_limits(Limits(max_value_bytes=7)):
        reader = store.open_reader(MULTICHUNK)
    assert reader.limits.max_value_bytes == 7  # worker threads read this, not the context
    assert store.load(MULTICHUNK, layers="full").stats().total_entries > 0


def test_explicit_limits_beat_the_context():
    with use_limits(Limits(max_chunk_bytes=1024)):
        assert store.load(MULTICHUNK, layers="full", limits=Limits()).stats().total_entries > 0
        assert jsonl.parse_text('{"op": "delete", "key": "kk"}', limits=Limits())[0].key == "kk"


def test_the_jsonl_and_legacy_readers_follow_the_context():
    line = '{"op": "delete", "key": "abcdef"}'
    with use_limits(Limits(max_key_bytes=4)), pytest.raises(jsonl.LineLimitError, match="maximum of 4"):
        jsonl.parse_text(line)
    with use_limits(Limits(max_line_bytes=8)), pytest.raises(jsonl.LineLimitError, match="8 bytes"):
        jsonl.parse_text(line)
    with use_limits(Limits(max_legacy_bytes=1000)):
        assert legacy_cap(MAX_LEGACY_BYTES) == 1000 == process_cap("max_legacy_bytes")
    assert legacy_cap(MAX_LEGACY_BYTES) == MAX_LEGACY_BYTES


def test_meta_depth_and_tensor_dims_caps_apply_to_the_engine_and_the_parser():
    from thermo_cli.engine import chain
    from thermo_cli.model import Delta, DeltaType

    deep = {"a": {"b": {"c": 1}}}
    line = '{"op": "update", "key": "k", "value": "v", "meta": {"a": {"b": {"c": 1}}}}'
    with use_limits(Limits(max_meta_depth=2)):
        with pytest.raises(ValidationError, match="nested deeper than 2"):
            chain.validate_delta(Delta(DeltaType.UPDATE, "k", b"v", 1.0, 1, custom=deep))
        with pytest.raises(jsonl.LineError, match="meta: nested deeper than 2"):
            jsonl.parse_text(line)
    assert jsonl.parse_text(line)[0].custom == deep
