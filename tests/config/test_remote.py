"""The remote settings: URL detection, KEY=VALUE storage options, context scoping."""

from __future__ import annotations

import threading

import pytest

from thermo_cli.config.remote import (
    DEFAULT_REMOTE,
    RemoteSettings,
    current_remote,
    is_url,
    parse_storage_options,
    url_protocol,
    use_remote,
)
from thermo_cli.errors import ValidationError


@pytest.mark.parametrize(
    ("path", "proto"),
    [
        ("s3://bucket/m.thermo", "s3"),
        ("gs://b/x", "gs"),
        ("HTTPS://host/x", "https"),
        ("memory://x", "memory"),
        ("blockcache::s3://x", None),
        ("m.thermo", None),
        ("/abs/m.thermo", None),
        ("C:/models/m.thermo", None),
        ("dir:with:colons/m.thermo", None),
    ],
)
def test_urls_are_told_from_local_paths(path: str, proto: str | None) -> None:
    assert url_protocol(path) == proto
    assert is_url(path) is (proto is not None)


def test_storage_options_parse_json_values_and_keep_text() -> None:
    got = parse_storage_options(
        [
            "anon=true",
            "default_block_size=65536",
            "endpoint_url=http://127.0.0.1:9000",
            'client_kwargs={"a": 1}',
        ]
    )
    assert got == {
        "anon": True,
        "default_block_size": 65536,
        "endpoint_url": "http://127.0.0.1:9000",
        "client_kwargs": {"a": 1},
    }


@pytest.mark.parametrize("bad", ["anon", "=x", ""])
def test_a_storage_option_without_key_and_value_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="expected KEY=VALUE"):
        parse_storage_options([bad])


def test_use_remote_is_scoped_to_the_block_and_the_context() -> None:
    mine = RemoteSettings(storage_options={"anon": True}, cache_dir="/tmp/c")
    seen: list[RemoteSettings] = []
    with use_remote(mine):
        assert current_remote() is mine
        t = threading.Thread(target=lambda: seen.append(current_remote()))
        t.start()
        t.join()
    assert current_remote() is DEFAULT_REMOTE
    assert seen == [DEFAULT_REMOTE]
    with pytest.raises(ValidationError), use_remote({"anon": True}):  # type: ignore[arg-type]
        pass
