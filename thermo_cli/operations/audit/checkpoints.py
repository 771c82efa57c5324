"""Checkpoints and signatures stored in the log itself.

``thermo checkpoint`` appends ``Event(kind="checkpoint")`` binding the log size and
Merkle root *before* it and the state digest of the layers — the same fields a
consolidation records. Both commands verify the whole file first, so neither a
checkpoint nor a signature ever vouches for a damaged or tampered file. The
checkpoint's C2SP text is derived from those fields and the origin ``thermo/<id>``;
nothing else is needed to re-create it.

``thermo sign`` appends ``Event(kind="signature")`` with the signer's name, key ID,
Ed25519 signature over the checkpoint text, the public key, and the index of the
checkpoint record it signs. Several signatures of one checkpoint coexist; the note text
handed to auditors lists them all. Writes take the file's writer lock and append in
O(delta) through :func:`thermo_cli.store.edit`.

The *current* checkpoint is the last consolidation or checkpoint record when only
signature records follow it; otherwise the log moved on and a new checkpoint is made.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from thermo_cli import store
from thermo_cli.codec.records import decode_record
from thermo_cli.errors import ChainError, RefusedError
from thermo_cli.integrity import note
from thermo_cli.model import Event
from thermo_cli.operations.audit.verify import (
    SIGNATURE_KIND,
    checkpoint_of,
    is_state_event,
    origin_of,
    verified,
)

TAIL_START = 16
"""Records read from the end of the log when looking for the current checkpoint."""


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """A checkpoint record of a file and its C2SP note (with every stored signature)."""

    index: int
    kind: str
    checkpoint: note.Checkpoint
    note: note.SignedNote
    created: bool = False

    def to_json(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "record": self.index,
            "kind": self.kind,
            "created": self.created,
            "origin": cp.origin,
            "log_size": cp.size,
            "log_root": cp.root.hex(),
            "state_digest": None if cp.state_digest is None else cp.state_digest.hex(),
            "meta_digest": None if cp.meta_digest is None else cp.meta_digest.hex(),
            "signers": [s.name for s in self.note.signatures],
            "note": self.note.text(),
        }


def _decode_tail(reader: Any, start: int) -> list[tuple[int, Any]]:
    return [
        (raw.index, decode_record(raw.data, what=f"log record {raw.index}"))
        for raw in reader.iter_raw_records(start)
    ]


def current_checkpoint(reader: Any) -> CheckpointInfo | None:
    """The checkpoint covering the whole log but trailing signatures, or None.

    A checkpoint written before meta binding (no ``meta_digest``) is not current: signing
    it would leave the configuration unsigned, so a new one is made.
    """
    size = reader.trailer.log_size
    want = TAIL_START
    origin = origin_of(reader.meta_fields()["id"])
    while True:
        start = max(0, size - want)
        tail = _decode_tail(reader, start)
        sigs: list[Event] = []
        for index, rec in reversed(tail):
            if isinstance(rec, Event) and rec.kind == SIGNATURE_KIND:
                sigs.append(rec)
                continue
            if (
                isinstance(rec, Event)
                and is_state_event(rec)
                and rec.fields["log_size"] == index
                and isinstance(rec.fields.get("meta_digest"), bytes)  # older ones leave the meta unsigned
            ):
                return _info(
                    index, rec, origin, [s for s in reversed(sigs) if s.fields.get("checkpoint") == index]
                )
            return None
        if start == 0:
            return None
        want *= 4


def _info(
    index: int, ev: Event, origin: str, sig_events: list[Event], created: bool = False
) -> CheckpointInfo:
    cp = checkpoint_of(ev, origin)
    signed = note.SignedNote(cp.body())
    for s in sig_events:
        f = s.fields
        try:
            sig = note.NoteSignature(str(f["name"]), bytes(f["key_id"]), bytes(f["signature"]))
        except (KeyError, TypeError, ValueError):
            continue
        signed = signed.with_signature(sig)
    return CheckpointInfo(index, ev.kind, cp, signed, created)


def _ensure_checkpoint(path: str, tg: Any) -> CheckpointInfo:
    """Under the writer lock: the current checkpoint, or a new one appended to ``tg``."""
    origin_info = store.info(tg)
    reader = origin_info.reader if origin_info is not None else None
    if reader is None:
        raise RefusedError(f"{path}: checkpoints need a .thermo container (migrate a crate file first)")
    v = verified(path, reader, "checkpoint")  # vouching for a file starts with checking it, every time
    current = current_checkpoint(reader)
    if current is not None:
        return current
    assert v.scan is not None and v.layers is not None
    root = tg.log_root()
    if root != v.scan.root or tg.log_length != v.scan.size:
        raise ChainError(f"{path}: the loaded log does not match the verified file (changed meanwhile?)")
    fields = {
        "log_size": v.scan.size,
        "log_root": v.scan.root,
        "state_digest": v.layers.digest(),
        "meta_digest": v.meta_digest,
        "origin": v.origin,
        "entries": v.layers.entries,
    }
    ev = tg.append_event("checkpoint", fields)
    return _info(v.scan.size, ev, v.origin, [], created=True)


@contextmanager
def _with_checkpoint(path: str | os.PathLike[str], needs: str) -> Iterator[tuple[str, Any, CheckpointInfo]]:
    """In one :func:`thermo_cli.store.edit`: (path, loaded thermogram, its current checkpoint
    — appended to the thermogram if there was none). What the block appends is committed
    when it succeeds; a block that appends nothing to an existing checkpoint writes nothing."""
    p = os.fspath(path)
    if store.sniff(p) != "thermo":
        raise RefusedError(f"{p}: {needs} need a .thermo container (run `thermo migrate` first)")
    with store.edit(p) as tg:
        yield p, tg, _ensure_checkpoint(p, tg)


def checkpoint(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Append a checkpoint record unless the current one still covers the log."""
    with _with_checkpoint(path, "checkpoints") as (_, _, info):
        return info


def sign(path: str | os.PathLike[str], private_key: Any, name: str) -> CheckpointInfo:
    """Sign the current checkpoint (made first if needed); returns it with every signature.

    Signing again with a key that already signed this checkpoint changes nothing.
    """
    note.check_key_name(name)
    with _with_checkpoint(path, "signatures") as (_, tg, info):
        sig = note.sign_body(info.note.body, name, private_key)
        if any(
            (s.name, s.key_id, s.signature) == (sig.name, sig.key_id, sig.signature)
            for s in info.note.signatures
        ):
            return info
        pub = note.public_key_bytes(private_key.public_key())
        tg.append_event(
            SIGNATURE_KIND,
            {
                "checkpoint": info.index,
                "origin": info.checkpoint.origin,
                "name": sig.name,
                "key_id": sig.key_id,
                "signature": sig.signature,
                "public_key": pub,
            },
        )
        return CheckpointInfo(
            info.index, info.kind, info.checkpoint, info.note.with_signature(sig), info.created
        )
