"""Put a finished local thermogram at a URL: verify it, upload it whole, never half.

Thermo writes only local files (a commit appends and syncs in place, which object stores
cannot do). A finished file goes to a store in one step: :func:`upload_thermogram`
verifies it fully, refuses an existing object unless asked to replace it, uploads it to a
temporary key beside the target (``.<name>.upload-<random>``), checks the uploaded size,
then moves it to the target key, and removes the temporary object if anything fails, so
the target is the old object or the new complete one, never a partial one. What the
final move gives depends on the store (see docs/remote.md): a rename on ``file://``, a
server-side copy then delete on S3 and GCS (each object write is atomic for readers), a
key move on ``memory://``. HTTP(S) servers take no uploads.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from thermo_cli.config.remote import RemoteSettings, current_remote, is_url, url_protocol
from thermo_cli.container.remote import filesystem, one_line
from thermo_cli.errors import (
    IntegrityError,
    NotFoundError,
    RefusedError,
    RemoteError,
    ThermoError,
    ValidationError,
)

READ_ONLY_PROTOCOLS = frozenset({"http", "https"})
"""Protocols fsspec reads but cannot write."""


@dataclass(frozen=True, slots=True)
class UploadReport:
    """What an upload put where."""

    file: str
    url: str
    bytes: int
    head_hash: str | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "url": self.url,
            "bytes": self.bytes,
            "head_hash": self.head_hash,
            "seconds": round(self.seconds, 4),
        }


def check_upload_target(url: str, *, overwrite: bool, settings: RemoteSettings | None = None) -> None:
    """Refuse early, before any work, what :func:`upload_thermogram` would refuse: a local
    path, a read-only protocol, a missing bucket or directory, an existing object without
    ``overwrite``."""
    fs, path = _target_fs(url, settings)
    _check_target(fs, path, url, overwrite)


def upload_thermogram(
    file: str | os.PathLike[str],
    url: str,
    *,
    overwrite: bool = False,
    settings: RemoteSettings | None = None,
) -> UploadReport:
    """Verify ``file`` and upload it to ``url`` (see the module docstring).

    Raises IntegrityError when the file fails verification (nothing is uploaded),
    RefusedError when ``url`` exists and ``overwrite`` is false, NotFoundError when the
    bucket or parent does not exist, RemoteError for a bad URL or a failed upload.
    """
    from thermo_cli.operations.audit.verify import verify_file

    t0 = time.perf_counter()
    local = os.fspath(file)
    if is_url(local):
        raise ValidationError(f"{local}: the file to upload must be a local file")
    fs, path = _target_fs(url, settings)
    _check_target(fs, path, url, overwrite)
    report = verify_file(local)
    if not report.ok:
        what = report.failure.reason if report.failure is not None else "a check failed"
        raise IntegrityError(f"{local}: fails verification ({what}); not uploaded")
    size = os.path.getsize(local)
    _put_atomically(fs, local, path, url, size)
    return UploadReport(local, url, size, report.head_hash, time.perf_counter() - t0)


def _target_fs(url: str, settings: RemoteSettings | None) -> tuple[Any, str]:
    if not is_url(url):
        raise ValidationError(f"{url}: not a URL (upload to s3://, gs://, memory://, file:// …)")
    if url.endswith("/"):
        raise ValidationError(f"{url}: names a prefix; give the object's full URL")
    if url_protocol(url) in READ_ONLY_PROTOCOLS:
        raise RemoteError(f"{url}: HTTP(S) servers take no uploads (use s3://, gs://, memory:// …)")
    return filesystem(url, settings or current_remote())


def _check_target(fs: Any, path: str, url: str, overwrite: bool) -> None:
    parent = fs._parent(path)
    try:
        exists = fs.exists(path)
        parent_ok = not parent or _is_container(fs, parent)
    except ThermoError:
        raise
    except Exception as exc:
        raise RemoteError(f"{url}: {one_line(exc)}") from None
    if exists and not overwrite:
        raise RefusedError(f"{url}: already exists (pass --force to replace it)")
    if not parent_ok:
        raise NotFoundError(f"{url}: no such bucket or directory ({parent})")


def _is_container(fs: Any, parent: str) -> bool:
    """Whether objects can go under ``parent``: an existing directory on a local
    filesystem, an existing bucket on an object store (a key prefix needs no creating);
    ``memory://`` makes its directories as it goes."""
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if "memory" in protocols:
        return True
    if protocols & {"file", "local"}:
        return bool(fs.isdir(parent))
    return bool(fs.exists(parent.split("/", 1)[0]))


def _put_atomically(fs: Any, local: str, path: str, url: str, size: int) -> None:
    """Upload to a temporary key beside ``path``, check its size, move it onto ``path``;
    on any failure remove the temporary object and raise one RemoteError."""
    parent, name = fs._parent(path), path.rsplit("/", 1)[-1]
    tmp = (
        f"{parent}/.{name}.upload-{secrets.token_hex(6)}"
        if parent
        else f".{name}.upload-{secrets.token_hex(6)}"
    )
    try:
        fs.put_file(local, tmp)
        got = fs.info(tmp).get("size")
        if got != size:
            raise RemoteError(f"{url}: upload incomplete ({got} of {size} bytes arrived)")
        fs.mv(tmp, path)
    except BaseException as exc:
        _remove_quietly(fs, tmp)
        if isinstance(exc, ThermoError):
            raise
        if isinstance(exc, Exception):
            raise RemoteError(f"{url}: upload failed: {one_line(exc)}") from None
        raise
    finally:
        fs.invalidate_cache()


def _remove_quietly(fs: Any, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path)
    except Exception:  # the original failure is what the user needs to see
        return
