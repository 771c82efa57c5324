"""Safetensors inputs at URLs: copied to a private local directory before an import.

An import reads every byte of every selected tensor, and the safetensors library checks
headers in local files, so a shard at ``s3://…``, ``gs://…``, ``http(s)://…`` or
``memory://…`` is downloaded whole (fsspec's ``get``, which fetches the objects of one
call concurrently on the asynchronous stores) into a temporary directory that is removed
when the import ends, whatever happens. An argument may be one shard URL, an index JSON
URL (its shards are fetched from beside it), a URL prefix ending in ``/`` or a URL glob
(their ``*.safetensors`` objects, sorted). Each copy keeps its object's file name, so
what the thermogram records (file names, sizes, order) is the same as for local files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from thermo_cli.config.remote import RemoteSettings, current_remote, is_url
from thermo_cli.errors import NotFoundError, RemoteError, ThermoError, ValidationError
from thermo_cli.formats.safetensors.sources import read_index

_GLOB_CHARS = frozenset("*?[")


@dataclass(slots=True)
class FetchedInputs:
    """The import's arguments with every URL replaced by its local copy."""

    inputs: list[str]
    """Local paths, in argument order (a URL prefix or glob: its objects, sorted)."""
    origin: dict[str, str] = field(default_factory=dict)
    """Local copy (absolute path) → the URL it was fetched from."""
    version: dict[str, object] = field(default_factory=dict)
    """Local copy → the object's version tag (ETag or modification time) when fetched."""


@contextlib.contextmanager
def fetched_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    workdir: str | os.PathLike[str] | None = None,
    settings: RemoteSettings | None = None,
) -> Iterator[FetchedInputs]:
    """Local paths for ``inputs``: local ones as given, URLs downloaded into a temporary
    directory under ``workdir`` (default: the system's), removed when the block ends."""
    if not any(is_url(os.fspath(p)) for p in inputs):
        yield FetchedInputs([os.fspath(p) for p in inputs])
        return
    settings = settings or current_remote()
    tmp = tempfile.mkdtemp(prefix=".thermo-shards-", dir=workdir)
    try:
        out = FetchedInputs([])
        for n, raw in enumerate(inputs):
            arg = os.fspath(raw)
            if not is_url(arg):
                out.inputs.append(arg)
                continue
            subdir = os.path.join(tmp, str(n))
            os.mkdir(subdir)
            out.inputs.extend(_fetch_argument(arg, subdir, settings, out))
        yield out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch_argument(url: str, subdir: str, settings: RemoteSettings, out: FetchedInputs) -> list[str]:
    """Download what one URL argument names into ``subdir``; the local inputs it becomes."""
    from thermo_cli.container.remote import expand_url, filesystem

    fs, path = filesystem(url, settings)
    base = url[: len(url) - len(url.rsplit("/", 1)[-1])]
    if url.endswith(".json"):
        [index] = _download(fs, [url], subdir, settings, out)
        names = read_index(index).shard_names
        _download(fs, [base + name for name in names], subdir, settings, out)
        return [index]
    if url.endswith("/") or any(c in _GLOB_CHARS for c in path):
        found = [u for u in expand_url(url, settings, suffix=".safetensors") if u.endswith(".safetensors")]
        if not found:
            raise NotFoundError(f"{url}: matches no .safetensors object")
        return _download(fs, found, subdir, settings, out)
    return _download(fs, [url], subdir, settings, out)


def _download(
    fs: Any, urls: list[str], subdir: str, settings: RemoteSettings, out: FetchedInputs
) -> list[str]:
    """Fetch ``urls`` (one concurrent ``get``) to ``subdir/<object name>``; their local paths."""
    from thermo_cli.container.remote import filesystem, version_tag

    names = [u.rstrip("/").rsplit("/", 1)[-1] for u in urls]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationError(f"{urls[0]}: several objects named {dupes[0]!r}; give them one at a time")
    paths = [filesystem(u, settings)[1] for u in urls]
    local = [os.path.join(subdir, n) for n in names]
    try:
        infos = [fs.info(p) for p in paths]
        fs.get(paths, local)
    except FileNotFoundError:
        missing = next((u for u, p in zip(urls, paths, strict=True) if not _exists(fs, p)), urls[0])
        raise NotFoundError(f"{missing}: no such object") from None
    except ThermoError:
        raise
    except Exception as exc:
        raise RemoteError(
            f"{urls[0]}: download failed: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        ) from None
    for u, lp, info in zip(urls, local, infos, strict=True):
        if not os.path.isfile(lp):
            raise RemoteError(f"{u}: is a prefix or directory, not a safetensors object")
        real = os.path.abspath(lp)
        out.origin[real] = u
        out.version[real] = version_tag(dict(info))
    return local


def _exists(fs: Any, path: str) -> bool:
    try:
        return bool(fs.exists(path))
    except Exception:
        return False
