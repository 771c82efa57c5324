"""What a verification authenticates, said plainly.

Hashes, Merkle roots and digests show that a file is self-consistent; anyone who edits it
can recompute them. Only a signature by a key the verifier was given authenticates, and
only up to the checkpoint it signs. A file with its signatures stripped, or rewritten and
re-hashed from scratch, is still intact, so the report must say what was *not* checked:
:class:`Authentication` is that statement (status, signers, how far the newest signed
checkpoint reaches), and ``verify(require_signed_head=True)`` turns it into a check.

:func:`meta_differences` names the meta fields that differ from what the log last said
about them, for the verifier's meta digest failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from thermo_cli.integrity.metadigest import value_digest
from thermo_cli.integrity.state import CONFIGURE_KIND, EXTENSION_KIND, RENAME_KIND
from thermo_cli.model import Event

Status = Literal["signed", "partially-signed", "unsigned", "signatures-unverified"]


@dataclass(slots=True)
class Authentication:
    """Who signed the file up to which record (``report.authentication`` as JSON)."""

    status: Status
    signers: list[str] = field(default_factory=list)
    signed_records: int = 0
    """Records 0 … signed_records − 1 are covered: the newest signed checkpoint and the log before it."""
    total_records: int = 0
    head_signed: bool = False
    """A given key signed a checkpoint covering every record but trailing signatures, the
    layers and the meta (only ever true when keys were given)."""
    checkpoint: int | None = None
    uncovered: list[int] = field(default_factory=list)
    meta_signed: bool = False
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "signers": list(self.signers),
            "signed_records": self.signed_records,
            "total_records": self.total_records,
            "head_signed": self.head_signed,
            "checkpoint": self.checkpoint,
            "uncovered_records": len(self.uncovered),
            "meta_signed": self.meta_signed,
            "summary": self.summary,
        }


def ranges_text(indices: list[int]) -> str:
    """``[31, 32, 35]`` → ``"31–32, 35"`` (at most five ranges, then "…")."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    parts = [f"{a}" if a == b else f"{a}–{b}" for a, b in runs[:5]]
    return ", ".join(parts) + (", …" if len(runs) > 5 else "")


def authentication_of(
    *,
    size: int,
    trusted: bool,
    signed: list[tuple[str, Event]],
    checkpoints: list[int],
    signature_records: list[int],
) -> Authentication:
    """The statement for a log of ``size`` records.

    ``signed`` holds (signer name, signed checkpoint event) for every valid signature —
    by a given key when ``trusted``, else by the key each names — and ``checkpoints`` the
    signed checkpoints' record indices, in the same order.
    """
    if not signed:
        return _unsigned(size, trusted, bool(signature_records))
    newest = max(checkpoints)
    cp_event = next(ev for (_, ev), c in zip(signed, checkpoints, strict=True) if c == newest)
    signers = sorted({name for (name, _), c in zip(signed, checkpoints, strict=True) if c == newest})
    sig_set = set(signature_records)
    uncovered = [i for i in range(newest + 1, size) if i not in sig_set]
    meta_signed = isinstance(cp_event.fields.get("meta_digest"), bytes)
    head = trusted and not uncovered and meta_signed
    status: Status = "signatures-unverified" if not trusted else "signed" if head else "partially-signed"
    auth = Authentication(status, signers, newest + 1, size, head, newest, uncovered, meta_signed)
    auth.summary = _summary(auth)
    return auth


def _unsigned(size: int, trusted: bool, has_signatures: bool) -> Authentication:
    if has_signatures and not trusted:
        auth = Authentication("signatures-unverified", total_records=size)
        auth.summary = "signatures present but NOT checked against a trusted key (none given)"
        return auth
    auth = Authentication("unsigned", total_records=size)
    auth.summary = (
        "NOT signed by any given key: nothing is authenticated"
        if trusted
        else "NOT signed: nothing is authenticated (digests only show the file is self-consistent; "
        "anyone who rewrites it can recompute them)"
    )
    return auth


def _summary(auth: Authentication) -> str:
    who = ", ".join(auth.signers)
    if auth.status == "signatures-unverified":
        return (
            f"signatures by {who} (up to record {auth.checkpoint} of {auth.total_records}) verify with "
            "the keys they name, NOT checked against a trusted key (none given)"
        )
    if auth.head_signed:
        return (
            f"signed by {who}: the checkpoint at record {auth.checkpoint} of {auth.total_records} covers "
            "the head (only signatures follow it), the layers and the configuration"
        )
    text = f"signed by {who} up to record {auth.checkpoint} of {auth.total_records}"
    if auth.uncovered:
        text += f"; records {ranges_text(auth.uncovered)} are NOT covered by a signature"
    if not auth.meta_signed:
        text += "; the configuration is NOT covered (signed before meta binding)"
    return text


def meta_differences(events: Iterable[Any], meta_map: Mapping[str, Any]) -> list[str]:
    """Meta fields whose value differs from the newest the log states for them.

    ``configure`` events carry the configuration maps, ``rename`` the name, ``extension``
    the SHA-256 of each extension value, checkpoints their origin ``thermo/<id>``. A field
    the log never mentions cannot be named.
    """
    latest: dict[str, Any] = {}
    for scanned in events:
        ev = scanned.event
        f = ev.fields
        if ev.kind == CONFIGURE_KIND:
            latest.update({k: f[k] for k in ("thermal", "plasticity", "policy") if k in f})
        elif ev.kind == RENAME_KIND and "name" in f:
            latest["name"] = f["name"]
        elif ev.kind == EXTENSION_KIND and isinstance(f.get("key"), str):
            latest[f"extras.{f['key']}"] = f.get("sha256")
        elif isinstance(f.get("origin"), str) and f["origin"].startswith("thermo/"):
            latest["id"] = f["origin"][len("thermo/") :]
    extras = meta_map.get("extras") or {}
    changed = []
    for name, value in latest.items():
        if name.startswith("extras."):
            key = name[len("extras.") :]
            current = value_digest(extras[key]) if key in extras else None
        else:
            current = meta_map.get(name)
        if current != value:
            changed.append(name)
    return changed
