"""Entry proofs: show one entry of a thermogram to someone who does not have the file.

``thermo prove FILE KEY`` emits a JSON document holding the entry's state-tree leaf
(canonical CBOR of layer, key, SHA-256 of the value, strength, ternary, timestamps,
count, tensor spec), its RFC 9162 inclusion proof, and the C2SP checkpoint note whose
``state-digest`` line is the tree's root — signed by whoever signed that checkpoint.
``thermo verify-proof`` checks the signatures against the auditor's keys, the inclusion
proof against the signed digest, and (optionally) the value bytes against the leaf.

The proof is made against the newest consolidation/checkpoint record, and only when the
layers still match its digest: a proof about a state nobody bound would prove nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from thermo_cli import store
from thermo_cli.codec import cbor
from thermo_cli.codec.timestamps import format_z
from thermo_cli.errors import CorruptError, FormatError, NotFoundError, RefusedError
from thermo_cli.integrity import merkle, note
from thermo_cli.integrity.report import VerifyReport
from thermo_cli.model import Event, Layer
from thermo_cli.operations.audit.checkpoints import _info
from thermo_cli.operations.audit.keys import PublicKey
from thermo_cli.operations.audit.verify import SIGNATURE_KIND, is_state_event, verified

PROOF_FORMAT = "thermo-entry-proof"
PROOF_VERSION = 1
MAX_PROOF_BYTES = 16 << 20
"""Largest proof document accepted (a proof is a few KiB; the cap bounds hostile input)."""


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def entry_view(leaf: bytes) -> dict[str, Any]:
    """The entry a leaf describes, as JSON (bytes in hex, the layer by name)."""
    m = cbor.decode(leaf, what="entry leaf")
    if not isinstance(m, dict):
        raise CorruptError("entry leaf: not a map")
    view: dict[str, Any] = _jsonable(m)
    layer = m.get("layer")
    if isinstance(layer, int) and not isinstance(layer, bool) and 0 <= layer <= 3:
        view["layer"] = Layer(layer).label
    ts = m.get("updated_at")
    if isinstance(ts, int) and not isinstance(ts, bool):
        view["updated_at_text"] = format_z(ts)
    return view


def prove(path: str | os.PathLike[str], key: str, *, layer: Layer | None = None) -> dict[str, Any]:
    """An inclusion proof of ``key`` against the newest checkpointed state digest."""
    p = os.fspath(path)
    if store.sniff(p) != "thermo":
        raise RefusedError(f"{p}: proofs need a .thermo container (run `thermo migrate` first)")
    reader = store.open_reader(p)
    try:
        v = verified(p, reader, "prove from")
    finally:
        reader.close()
    assert v.scan is not None and v.layers is not None
    bound = [ev for ev in v.scan.events if is_state_event(ev.event)]
    digest = v.layers.digest()
    if not bound or bound[-1].event.fields["state_digest"] != digest:
        raise RefusedError(
            f"{p}: the layers are not bound by the newest checkpoint (run `thermo checkpoint` first)"
        )
    cp_ev = bound[-1]
    pos = v.layers.find(key, layer)
    if pos is None:
        where = f" in the {layer.label} layer" if layer is not None else ""
        raise NotFoundError(f"key {key!r} is in no layer{where}")
    hashes = [merkle.leaf_hash(leaf) for _, _, leaf in v.layers.leaves]
    leaf = v.layers.leaves[pos][2]
    signed = _note_for(cp_ev.index, cp_ev.event, v.scan.events, v.origin)
    return {
        "format": PROOF_FORMAT,
        "version": PROOF_VERSION,
        "origin": v.origin,
        "key": key,
        "layer": Layer(v.layers.leaves[pos][1]).label,
        "entry": entry_view(leaf),
        "leaf": base64.b64encode(leaf).decode("ascii"),
        "leaf_index": pos,
        "tree_size": len(hashes),
        "path": [h.hex() for h in merkle.inclusion_proof(hashes, pos)],
        "state_digest": digest.hex(),
        "checkpoint": {"record": cp_ev.index, "kind": cp_ev.event.kind, "note": signed.text()},
    }


def _note_for(index: int, ev: Event, events: Sequence[Any], origin: str) -> note.SignedNote:
    sigs = [
        e.event
        for e in events
        if e.event.kind == SIGNATURE_KIND and e.event.fields.get("checkpoint") == index
    ]
    return _info(index, ev, origin, sigs).note


# --- verifying a proof ------------------------------------------------------------------------


def _field(doc: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    v = doc.get(name)
    if isinstance(v, bool) or not isinstance(v, kind):
        raise CorruptError(f"proof: field {name!r} is missing or has the wrong type")
    return v


def _hex32(text: Any, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise CorruptError(f"proof: {what} must be 64 hex digits")
    return raw


def verify_proof(
    doc: Any, *, pubkeys: Sequence[PublicKey] = (), value: bytes | None = None, source: str = "proof"
) -> VerifyReport:
    """Check an entry proof without the thermogram; raises CorruptError if malformed."""
    if not isinstance(doc, dict) or doc.get("format") != PROOF_FORMAT:
        raise CorruptError(f"{source}: not a thermo entry proof (format {PROOF_FORMAT!r} expected)")
    if doc.get("version") != PROOF_VERSION:
        raise CorruptError(f"{source}: unsupported proof version {doc.get('version')!r}")
    key = _field(doc, "key", str)
    layer_name = _field(doc, "layer", str)
    index = _field(doc, "leaf_index", int)
    size = _field(doc, "tree_size", int)
    path = [_hex32(h, "path element") for h in _field(doc, "path", list)]
    try:
        leaf = base64.b64decode(_field(doc, "leaf", str), validate=True)
    except binascii.Error:
        raise CorruptError("proof: leaf is not base64") from None
    cp_doc = _field(doc, "checkpoint", dict)
    signed = note.parse_note(_field(cp_doc, "note", str))
    cp = note.parse_checkpoint(signed.body)
    report = VerifyReport(path=source, format="thermo entry proof")
    report.details.update({"origin": cp.origin, "key": key, "layer": layer_name, "log_size": cp.size})

    try:
        view = entry_view(leaf)
    except FormatError as exc:
        view = None
        report.add("entry", False, 0, str(exc))
        report.fail("entry", f"the proved leaf is not an entry: {exc}", key=key)
    if view is not None:
        shown = doc.get("entry")
        same = view.get("key") == key and view.get("layer") == layer_name and (shown is None or shown == view)
        report.add(
            "entry",
            same,
            1,
            f"{layer_name} entry {key!r}" if same else "the entry shown does not match the proved leaf",
        )
        if not same:
            report.fail("entry", "the key, layer or fields shown differ from the proved leaf", key=key)
        report.details["entry"] = view

    if cp.state_digest is None:
        report.add("checkpoint", False, 0, "the checkpoint note carries no state digest")
        report.fail("checkpoint", "the checkpoint note carries no state-digest line")
        return report
    claimed = doc.get("state_digest")
    if claimed is not None and _hex32(claimed, "state_digest") != cp.state_digest:
        report.add("checkpoint", False, 0, "state digest differs from the checkpoint's")
        report.fail("checkpoint", "the proof's state digest is not the one the checkpoint note states")
    ok = merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, path, cp.state_digest)
    miss = "the inclusion proof does not lead to the checkpoint's state digest"
    report.add(
        "inclusion",
        ok,
        len(path),
        f"leaf {index} of {size} is in the state digest {cp.state_digest.hex()}" if ok else miss,
    )
    if not ok:
        report.fail("inclusion", miss, key=key)

    _check_signers(report, signed, pubkeys)
    if value is not None and view is not None:
        got = hashlib.sha256(value).hexdigest()
        same = got == view.get("value_sha256")
        report.add(
            "value",
            same,
            len(value),
            "the value bytes match the entry's SHA-256"
            if same
            else f"the value bytes hash to {got}, the entry says {view.get('value_sha256')}",
        )
        if not same:
            report.fail("value", "the given value is not the proved entry's value", key=key)
    return report


def _check_signers(report: VerifyReport, signed: note.SignedNote, pubkeys: Sequence[PublicKey]) -> None:
    res = note.check_note(signed, [(k.name, k.raw) for k in pubkeys])
    if res.invalid:
        reason = f"signature by {res.invalid[0]!r} does not verify (the checkpoint text was altered)"
        report.add("signatures", False, len(res.verified), reason)
        report.fail("signatures", reason)
        return
    if not pubkeys:
        report.add(
            "signatures",
            True,
            0,
            f"{len(signed.signatures)} signature(s) present, not checked (pass pubkeys to check who signed)",
        )
        report.notes.append("without pubkeys the proof shows consistency, not who vouched for it")
        return
    missing = [
        k.name or k.source
        for k in pubkeys
        if not any(
            note.key_id(s.name, k.raw) == s.key_id and s.name in res.verified for s in signed.signatures
        )
    ]
    if missing:
        reason = "not signed by " + ", ".join(str(m) for m in missing)
        report.add("signatures", False, len(res.verified), reason)
        report.fail("signatures", reason)
        return
    report.add("signatures", True, len(res.verified), res.describe())
