"""How thermograms that live at a URL are read: a context-scoped setting, like the caps.

A path such as ``s3://bucket/m.thermo``, ``gs://…``, ``http(s)://…`` or ``memory://…``
is read through fsspec (the optional ``remote`` extra), by range requests: the container
layer's byte source turns every read of the format into one request for exactly those
bytes. What fsspec needs beyond the URL — credentials, an endpoint, anonymous access —
comes from fsspec's own configuration (its ``FSSPEC_<PROTOCOL>_<KEY>`` environment
variables and config files) and from the :class:`RemoteSettings` in force here, which
``thermo --storage-option KEY=VALUE`` sets for one run. ``cache_dir`` keeps the blocks a
read fetched on local disk, so reading the same file again fetches nothing new.

One frozen value is in force at a time (:func:`current_remote`), set for a block with
:func:`use_remote`; work handed to another process receives it explicitly.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from thermo_cli.errors import ValidationError
from thermo_cli.model.valueclass import FrozenValue

_URL = r"^([A-Za-z][A-Za-z0-9+.\-]*)://"
"""Matched through ``re``'s cache (compiled on first use, not at every start)."""

DEFAULT_CACHE_BLOCK = 256 * 1024
"""Bytes per block of the local block cache: small, so that a read of a few bytes far
from the others (a footer, one tensor's chunk) fetches little more than it needs."""


def url_protocol(path: str) -> str | None:
    """The protocol of ``path`` if it is a URL (``s3``, ``http`` …), else None (a local path)."""
    m = re.match(_URL, path)
    return m.group(1).lower() if m else None


def is_url(path: object) -> bool:
    """Whether ``path`` names a remote object (``scheme://…``) rather than a local file.

    ``file://`` URLs count too: they are read through the same byte source, and refused by
    writers like any other URL.
    """
    return isinstance(path, str) and re.match(_URL, path) is not None


def refuse_url(path: str | os.PathLike[str]) -> None:
    """Writing is local (ValidationError for a URL): a commit appends and syncs in place
    under a lock file, which object stores and HTTP servers cannot do. Write a local file
    and upload the finished file with the store's own tools."""
    if is_url(os.fspath(path)):
        raise ValidationError(
            f"{os.fspath(path)}: is a URL; thermo reads URLs but writes only local files "
            "(write a local file, then upload it)"
        )


class RemoteSettings(FrozenValue):
    """fsspec options for remote reads, and the optional local block cache."""

    storage_options: Mapping[str, Any]
    """Passed to the fsspec filesystem of every URL read (``endpoint_url``, ``anon`` …)."""
    cache_dir: str | None
    """A local directory holding the blocks remote reads fetched (None: no disk cache)."""
    cache_block: int
    """Bytes per cached block."""

    __slots__ = ("cache_block", "cache_dir", "storage_options")

    def __init__(
        self,
        storage_options: Mapping[str, Any] | None = None,
        cache_dir: str | None = None,
        cache_block: int = DEFAULT_CACHE_BLOCK,
    ) -> None:
        _set = object.__setattr__
        _set(self, "storage_options", {} if storage_options is None else storage_options)
        _set(self, "cache_dir", cache_dir)
        _set(self, "cache_block", cache_block)


DEFAULT_REMOTE = RemoteSettings()
_CURRENT: contextvars.ContextVar[RemoteSettings] = contextvars.ContextVar(
    "thermo_remote", default=DEFAULT_REMOTE
)


def current_remote() -> RemoteSettings:
    """The remote settings in force in this context (the innermost :func:`use_remote`)."""
    return _CURRENT.get()


@contextlib.contextmanager
def use_remote(settings: RemoteSettings) -> Iterator[RemoteSettings]:
    """Make ``settings`` the remote settings for the block (this context only), then restore."""
    if not isinstance(settings, RemoteSettings):
        raise ValidationError(f"settings: expected a RemoteSettings, got {type(settings).__name__}")
    token = _CURRENT.set(settings)
    try:
        yield settings
    finally:
        _CURRENT.reset(token)


def parse_storage_options(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` texts as fsspec options; values read as JSON when they parse
    (``anon=true``, ``default_block_size=65536``, ``client_kwargs={"region_name": "x"}``),
    else as text (``endpoint_url=http://127.0.0.1:9000``)."""
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValidationError(f"storage option {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out
