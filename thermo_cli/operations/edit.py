"""One writer session on a thermogram file: lock → load → change → commit, or nothing.

Every command that changes a file goes through :func:`edit`, so concurrent writers
serialize (the lock is held from load to commit) and a failure leaves the file exactly
as it was (the commit is atomic and only happens when the block succeeds). This is the
stand-in for ``store.edit`` until that lands; callers import ``edit`` from here only, so
switching is one import line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from thermo_cli import store
from thermo_cli.errors import FormatError, NotFoundError, RefusedError

if TYPE_CHECKING:
    from thermo_cli.engine.thermogram import Thermogram


class NoCommit(Exception):
    """Raise inside an :func:`edit` block to leave the file untouched (a dry run, no change)."""


def require_file(path: str) -> None:
    """Fail before taking a lock, so no lock file is left beside a path that does not exist."""
    if not os.path.exists(path):
        raise NotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise FormatError(f"{path}: is a directory, not a thermogram file")


def check_writable(path: str, *, upgrade: bool) -> str:
    """The file's kind; refuses to rewrite a crate file unless ``upgrade=True``.

    Refusing before any change is made means a forgotten ``upgrade`` never costs work.
    """
    kind = store.sniff(path)
    if kind == "engram":
        raise RefusedError(
            f"{path}: is a Rust-crate Engram export, which is an import source only "
            "(use `thermo import-engram`)"
        )
    if kind == "legacy" and not upgrade:
        raise RefusedError(
            f"{path}: is a Rust-crate legacy file; writing would convert it to .thermo: "
            "pass upgrade=True to convert it in place, or use `thermo migrate OLD NEW`"
        )
    return kind


def load_for_writing(path: str, *, upgrade: bool, log: str = "tail") -> tuple[Thermogram, bool]:
    """Load under the caller's lock; a crate file being upgraded logs its migration first.

    The ``migrate`` event (legacy chain verified, source digest, entry counts) comes right
    after the crate's deltas and before this session's changes, so the log reads in the
    order things happened. Returns (thermogram, whether a migrate event was appended).
    """
    kind = check_writable(path, upgrade=upgrade)
    tg = store.load(path, layers="lazy", log=log)
    if kind != "legacy" or "legacy" not in tg.extras:
        return tg, False
    from thermo_cli.formats.legacy import read_legacy_file
    from thermo_cli.operations.migrate import record_migration

    record_migration(tg, read_legacy_file(path), source=path)
    return tg, True


@contextlib.contextmanager
def edit(path: str, *, upgrade: bool = False, log: str = "tail") -> Iterator[Thermogram]:
    """Lock, load, yield the thermogram; commit when the block succeeds, else leave the file.

    :class:`NoCommit` raised in the block ends it quietly without a commit.
    """
    require_file(path)
    with store.locked(path):
        tg, _ = load_for_writing(path, upgrade=upgrade, log=log)
        try:
            yield tg
        except NoCommit:
            return
        store.commit(path, tg, upgrade=upgrade)
