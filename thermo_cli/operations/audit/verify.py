"""``thermo verify``: everything an auditor can check about a thermogram file.

For a ``.thermo`` container, in one pass each over the log and the layers:

* commits — every trailer of the commit chain, and the meta and index blocks and log
  tables of every commit match their digests; each earlier commit's log root is a prefix
  root of today's log;
* framing (format 2.1) — the commits cover every byte after the prefix, in order, each
  with a valid header and a matching body digest (:mod:`.framing`);
* log — every record's hash and prev link (naming the altered record), the segment
  digests, the log size, head hash and RFC 9162 Merkle root against the trailer, the
  consolidation point, and the legacy segment of a migrated file (crate hashes);
* checkpoints — every record that binds the state (consolidations, checkpoints, and every
  engine layer change, migration or import) has the log size and log root of the log
  before it;
* layers — every chunk digest, and the state digest of the actual layers against the last
  digest bound into the log;
* meta — the meta digest of the name, id, configuration, custom metadata and extension
  state against the one the newest binding record carries (spec §9.2.2);
* signatures — every signature record verifies with its embedded key, and each key given
  with ``pubkeys`` has signed (C2SP signed-note over the checkpoint text): in the file, or a
  given note (a witness that cosigned the saved or detached note need not sign the file);
* authentication — who signed up to which record, stated in ``report.authentication``;
  with ``require_signed_head`` the head (last record, layers, meta) must be signed by a
  given key (:mod:`.authn`);
* since — a saved checkpoint note: its signatures, and an RFC 9162 consistency proof
  that today's log extends it (a rewritten, forked or truncated history fails);
* note — a detached signed note (a checkpoint whose signatures live outside the file, e.g.
  an auditor's or witnesses' cosignatures): signed by a given key, and a checkpoint of this
  log. When its text is exactly the checkpoint the file binds at that size, its signers
  authenticate the file like signature records do.

Crate JSON files go to :func:`thermo_cli.formats.legacy.verify_legacy`. The library never
prints: everything lands in a :class:`~thermo_cli.integrity.report.VerifyReport`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from thermo_cli import store
from thermo_cli.container.keyindex import KeyIndex
from thermo_cli.container.layout import MAGIC, damage_reason
from thermo_cli.errors import BadMagicError, CorruptError, FormatError, IntegrityError, ValidationError
from thermo_cli.formats.legacy import read_legacy_file, verify_legacy
from thermo_cli.formats.legacy.verify import NOTE_UNCOVERED_FIELDS
from thermo_cli.integrity import logscan as chain
from thermo_cli.integrity import merkle, note
from thermo_cli.integrity.metadigest import META_FIELDS, meta_digest
from thermo_cli.integrity.report import VerifyReport
from thermo_cli.integrity.state import BIND_KIND, NON_LAYER_KINDS, is_binding
from thermo_cli.model import Event
from thermo_cli.operations.audit.authn import Authentication, authentication_of, meta_differences
from thermo_cli.operations.audit.framing import check_framing
from thermo_cli.operations.audit.keys import PublicKey
from thermo_cli.operations.audit.layers import LayerScan, reason_of, scan_layers
from thermo_cli.operations.audit.logpass import scan_file_log

STATE_KINDS = ("consolidate", "checkpoint", BIND_KIND)
"""Event kinds that must bind (log size, log root, state digest); any other event may
and is checked the same way when it does."""
SIGNATURE_KIND = "signature"


def origin_of(thermogram_id: str) -> str:
    """The checkpoint origin line of a thermogram: one log per thermogram id."""
    return f"thermo/{thermogram_id}"


def is_state_event(ev: Event) -> bool:
    return is_binding(ev.fields)


def checkpoint_of(ev: Event, origin: str) -> note.Checkpoint:
    """The C2SP checkpoint a state-binding event stands for (what signatures sign)."""
    f = ev.fields
    return note.Checkpoint(
        origin=str(f.get("origin", origin)),
        size=int(f["log_size"]),
        root=bytes(f["log_root"]),
        state_digest=bytes(f["state_digest"]),
        meta_digest=_meta_digest_field(f),
    )


def _meta_digest_field(fields: dict[str, Any]) -> bytes | None:
    """A binding's ``meta_digest`` (None in bindings written before meta binding)."""
    value = fields.get("meta_digest")
    return bytes(value) if isinstance(value, bytes) else None


# --- entry point ---------------------------------------------------------------------------


def verify_file(
    path: str | os.PathLike[str],
    *,
    pubkeys: Sequence[PublicKey] = (),
    since: str | os.PathLike[str] | note.SignedNote | None = None,
    deep: bool = False,
    limits: Any = None,
    progress: Callable[[str, int], None] | None = None,
    workers: int | None = None,
    require_signed_head: bool = False,
    detached_note: str | os.PathLike[str] | note.SignedNote | None = None,
) -> VerifyReport:
    """Verify any thermogram file; raises only when it is not a thermogram (or ``since`` is
    not a checkpoint note): a damaged one, even too damaged to open, is a failed report.

    ``since`` is a saved checkpoint note (path or parsed); ``deep`` decodes every log
    record strictly instead of reading links straight from canonical bytes; ``workers``
    caps the processes of the log pass (default: up to 4 on a long log, 1 to disable).
    ``require_signed_head`` fails the report unless a key in ``pubkeys`` signed a
    checkpoint that covers the head: every record but trailing signatures, the layers and
    the meta. Without it an unsigned or partly signed file can still be intact; the report's
    ``authentication`` says which. ``detached_note`` (path or parsed) is a signed checkpoint
    note kept outside the file; it must carry a valid signature by a key in ``pubkeys``.
    """
    if require_signed_head and not pubkeys:
        raise ValidationError("require_signed_head: needs at least one trusted key in pubkeys")
    if detached_note is not None and not pubkeys:
        raise ValidationError(
            "detached_note: needs at least one trusted key in pubkeys (a detached note is "
            "worth only the keys that signed it)"
        )
    p = os.fspath(path)
    try:
        kind = store.sniff(p)
    except BadMagicError as exc:
        if not _damaged_magic(p):
            raise  # not a thermogram at all: nothing to verify
        return _unreadable(p, "prefix", exc)
    saved = _load_note(since) if since is not None and not isinstance(since, note.SignedNote) else since
    detached = _parsed(detached_note)
    if kind == "legacy":
        if detached is not None:
            raise ValidationError(
                "detached_note: a Rust-crate file has no Merkle log to check a checkpoint "
                "against; migrate it first (`thermo migrate`)"
            )
        return _verify_legacy(p, pubkeys, saved, require_signed_head)
    if kind == "engram":
        raise FormatError(
            f"{p}: an Engram export holds no hash chain to verify "
            "(import it with `thermo import-engram` first)"
        )
    try:
        reader = store.open_reader(p, limits=limits)
    except FormatError as exc:  # a container that cannot be opened was damaged: a failed check
        return _unreadable(p, "framing", exc)
    try:
        v = ContainerVerifier(p, reader, pubkeys, saved, deep, progress, workers)
        v.require_signed_head = require_signed_head
        v.detached = detached
        return v.run()
    finally:
        reader.close()


def _damaged_magic(p: str) -> bool:
    """Whether the file starts with the container magic but for one byte (a flipped bit, a
    tampered byte) or a known text-mode mangling: a damaged thermogram, not another file."""
    with open(p, "rb") as f:
        head = f.read(len(MAGIC))
    if damage_reason(head) is not None:
        return True
    return len(head) == len(MAGIC) and sum(a != b for a, b in zip(head, MAGIC, strict=True)) == 1


def _unreadable(p: str, check: str, exc: Exception) -> VerifyReport:
    """The report of a container too damaged to open: verification ran and failed (exit 1),
    like any other damage; only a file that is not a thermogram at all raises instead."""
    report = VerifyReport(path=p, format="thermo (damaged)")
    reason = str(exc)
    report.add(check, False, 0, reason)
    report.fail(check, reason)
    return report


def verified(path: str, reader: Any, action: str) -> ContainerVerifier:
    """The full verification of an open container, for a command that vouches for the
    file: raises IntegrityError ("refusing to <action> a file that fails verification")
    unless every check passes. The verifier keeps its log and layer scans for reuse."""
    v = ContainerVerifier(path, reader, (), None, False, None)
    report = v.run()
    if not report.ok:
        f = report.failure
        where = f" at record {f.index}" if f is not None and f.index is not None else ""
        reason = f.reason if f is not None else "a check failed"
        raise IntegrityError(f"{path}: refusing to {action} a file that fails verification{where}: {reason}")
    return v


def _parsed(given: str | os.PathLike[str] | note.SignedNote | None) -> note.SignedNote | None:
    return given if given is None or isinstance(given, note.SignedNote) else _load_note(given)


def _load_note(since: str | os.PathLike[str]) -> note.SignedNote:
    p = Path(since)
    data = note.read_small_file(p, note.MAX_NOTE_BYTES, "checkpoint file", "checkpoint note")
    try:
        saved = note.parse_note(data)
        note.parse_checkpoint(saved.body)
    except FormatError as exc:
        # the argument is not a checkpoint note at all: bad input (exit 3), not a failed check
        raise CorruptError(f"{p}: not a checkpoint note (as thermo checkpoint --out writes): {exc}") from None
    return saved


def _verify_legacy(
    p: str, pubkeys: Sequence[PublicKey], since: note.SignedNote | None, require_signed_head: bool
) -> VerifyReport:
    if since is not None:
        raise ValidationError(
            "since: a Rust-crate file has no Merkle log to check a checkpoint "
            "against; migrate it first (`thermo migrate`)"
        )
    report = verify_legacy(read_legacy_file(p), path=p)
    if pubkeys:
        report.add("signatures", False, 0, "a Rust-crate file carries no signatures")
        report.fail("signatures", "a Rust-crate file carries no signatures (migrate and sign it)")
    auth = Authentication("unsigned", total_records=report.records)
    auth.summary = "NOT signed: a Rust-crate file carries no signatures (migrate and sign it)"
    report.authentication = auth.to_json()
    if require_signed_head:
        report.add("signed head", False, 0, auth.summary)
        report.fail("signed head", auth.summary)
    return report


class ContainerVerifier:
    """One verification run over an open container Reader.

    The log and layer scans stay on the object (``scan``, ``layers``), so checkpointing
    and proving reuse what verification computed instead of reading the file twice.
    """

    def __init__(
        self,
        path: str,
        reader: Any,
        pubkeys: Sequence[PublicKey],
        since: note.SignedNote | None,
        deep: bool,
        progress: Callable[[str, int], None] | None,
        workers: int | None = None,
    ) -> None:
        self.workers = workers
        self.reader = reader
        self.pubkeys = list(pubkeys)
        self.since = since
        self.deep = deep
        self.progress = progress
        self.report = VerifyReport(path=path, format=f"thermo {reader.prefix.major}.{reader.prefix.minor}")
        self.origin = "thermo/unknown"
        self.scan: chain.LogScan | None = None
        self.layers: LayerScan | None = None
        self.commit_sizes: list[int] = []
        self.meta_map: dict[str, Any] | None = None
        self.meta_digest: bytes | None = None
        """The current meta's digest (None when the meta block did not read)."""
        self.require_signed_head = False
        self.auth: Authentication | None = None
        self.detached: note.SignedNote | None = None
        """A detached signed checkpoint note to check (``thermo verify --note``)."""

    def run(self) -> VerifyReport:
        r, t = self.report, self.reader.trailer
        r.head_hash = t.head_hex
        r.records = t.log_size
        r.torn_tail_bytes = self.reader.torn_tail_bytes
        trailers = self.check_commits()
        self.commit_sizes = sorted({tr.log_size for tr in trailers})
        self.check_log(trailers)
        self.check_key_index()
        self.check_checkpoints()
        self.check_layers()
        self.check_state()
        self.check_meta()
        self.check_signatures()
        if self.since is not None:
            self.check_since()
        self.check_framing(trailers)
        if r.torn_tail_bytes:
            r.add(
                "torn tail",
                True,
                r.torn_tail_bytes,
                f"{r.torn_tail_bytes} bytes after the last commit ignored (an interrupted write)",
            )
            r.notes.append(
                f"{r.torn_tail_bytes} bytes after the last commit belong to an interrupted "
                "write and were ignored; the next commit removes them"
            )
        self.check_signed_head()
        r.notes.append(
            "the meta block's counters and timestamps (created_at, last_consolidation, "
            "total_deltas, total_consolidations) are protected by the commit digests only"
        )
        return r

    # --- commits --------------------------------------------------------------------------

    def check_commits(self) -> list[Any]:
        """Every trailer of the commit chain, and every block any of them names: the meta
        and index blocks and log tables of earlier commits too (a flipped byte in a block
        that no longer describes the current state is still damage)."""
        r = self.report
        trailers: list[Any] = []
        try:
            seen: set[tuple[int, int]] = set()
            for tr in self.reader.trailers():
                trailers.append(tr)
                self._check_blocks(tr, seen)
            meta = self.reader.meta_fields()
            self.meta_map = self.reader.meta_map
            self.meta_digest = meta_digest(self.reader.meta_map)
            _ = self.reader.index
        except FormatError as exc:
            reason = reason_of(exc, self.reader.path)
            r.add("commits", False, len(trailers), reason)
            r.fail("commits", reason)
            return trailers
        self.origin = origin_of(meta["id"])
        r.details["origin"] = self.origin
        r.add(
            "commits",
            True,
            len(trailers),
            f"{len(trailers)} commit(s): trailers, meta and index blocks and log tables match their digests",
        )
        return trailers

    def check_framing(self, trailers: list[Any]) -> None:
        """Every byte belongs to one commit, in order (2.1); a 2.0 file gets a note instead.

        It runs last: the checks before it name the record or chunk at fault, this one is
        the catch-all for bytes that nothing else covers.
        """
        r = self.report
        if not self.reader.framed:
            r.notes.append(
                "format 2.0 does not cover bytes that no block references; rewriting the file "
                "(e.g. `thermo consolidate`) upgrades it to format 2.1, whose commits cover every byte"
            )
            return
        if any(c.name == "commits" and not c.ok for c in r.checks):  # the chain did not read
            return
        try:
            covered = check_framing(self.reader, trailers)
        except FormatError as exc:
            reason = reason_of(exc, self.reader.path)
            r.add("framing", False, len(trailers), reason)
            r.fail("framing", reason)
            return
        r.details["covered_bytes"] = covered
        r.add(
            "framing",
            True,
            len(trailers),
            f"{len(trailers)} commit(s) cover all {covered} bytes after the prefix, in order",
        )

    def _check_blocks(self, tr: Any, seen: set[tuple[int, int]]) -> None:
        reader = self.reader
        blocks = (("meta block", tr.meta, "max_meta_bytes"), ("index block", tr.index, "max_block_bytes"))
        for name, ref, cap in blocks:
            if (ref.off, ref.len) not in seen:
                seen.add((ref.off, ref.len))
                reader.read_block(ref, f"{name} of commit {tr.seq}", getattr(reader.limits, cap), cap)
        table = tr.table
        while table is not None and (table.off, table.len) not in seen:
            seen.add((table.off, table.len))
            table = reader.table(table, tr.off)[1]

    # --- log ------------------------------------------------------------------------------

    def check_log(self, trailers: list[Any]) -> None:
        r, t = self.report, self.reader.trailer
        probes = {tr.log_size for tr in trailers}
        scan, state = scan_file_log(
            self.reader,
            keep_leaves=self.since is not None or self.detached is not None,
            deep=self.deep,
            probes=probes,
            workers=self.workers,
        )
        self.scan = scan
        if scan.failure is not None:
            f = scan.failure
            r.add("records", False, scan.size, f.reason)
            r.fail("records", f.reason, index=f.index, key=f.key)
        else:
            r.add(
                "records",
                True,
                scan.size,
                f"{scan.size} records hash and link ({scan.deltas} deltas, {len(scan.events)} events, "
                f"{scan.legacy} legacy)",
            )
        if scan.legacy:
            bad = scan.failure is not None and scan.failure.index < scan.legacy + 1
            r.add(
                "legacy segment",
                not bad,
                scan.legacy,
                f"{scan.legacy} deltas OK" if not bad else "broken: see the first failure",
            )
            r.notes.append(NOTE_UNCOVERED_FIELDS)
        if state.error is not None:
            r.add("log segments", False, state.segments, state.error)
            r.fail("log segments", state.error, index=state.error_index)
            return
        if state.bad_segments:
            reason = f"{state.bad_segments[0]}: SHA-256 does not match the digest its commit recorded"
            r.add("log segments", False, state.segments - len(state.bad_segments), reason)
            r.fail("log segments", reason)
        else:
            r.add("log segments", True, state.segments, f"{state.segments} segment digests match")
        head_ok = scan.size == t.log_size and scan.head == t.head
        r.add(
            "head",
            head_ok,
            scan.size,
            f"log of {scan.size} records ends at head {scan.head_hex}"
            if head_ok
            else f"log has {scan.size} records ending at {scan.head_hex}; the last commit says "
            f"{t.log_size} records ending at {t.head_hex}",
        )
        if not head_ok:
            r.fail(
                "head",
                "the log's size or last hash differs from the last commit's "
                f"({scan.size} vs {t.log_size} records)",
                index=max(0, scan.size - 1),
            )
        expected_root = t.compact_range().root()
        root_ok = scan.root == expected_root
        r.add("merkle root", root_ok, scan.size, f"log root {scan.root.hex()}")
        r.details["log_root"] = scan.root.hex()
        r.details["log_size"] = scan.size
        if not root_ok:
            r.fail(
                "merkle root",
                f"the log's Merkle root {scan.root.hex()} differs from the commit's {expected_root.hex()}",
            )
        older_bad = [
            tr
            for tr in trailers
            if tr.log_size in scan.probe_roots and scan.probe_roots[tr.log_size] != tr.compact_range().root()
        ]
        if older_bad:
            tr = older_bad[-1]
            r.add(
                "commit roots",
                False,
                len(trailers) - len(older_bad),
                f"commit {tr.seq} recorded another root for the first {tr.log_size} records",
            )
            r.fail(
                "commit roots",
                f"commit {tr.seq} recorded a different log root for its "
                f"{tr.log_size} records: the log before it was rewritten",
                index=max(0, tr.log_size - 1),
            )
        self.check_dirty_start(scan)

    def check_dirty_start(self, scan: chain.LogScan) -> None:
        """``dirty_start`` follows a consolidation point (spec §9.5): the last ``consolidate``
        event, or a binding record after it with no delta between the two."""
        r, t = self.report, self.reader.trailer
        ds = t.dirty_start
        events = {ev.index: ev.event for ev in scan.events}
        consolidations = [i for i, ev in events.items() if ev.kind == "consolidate"]
        last = consolidations[-1] if consolidations else -1
        between = sum(1 for i in events if last < i < ds)
        at = events.get(ds - 1)
        if ds == last + 1:
            ok = True
            detail = (
                f"uncommitted deltas start after the consolidation at record {last}"
                if last >= 0
                else "every delta is uncommitted (no consolidation yet)"
            )
        elif ds > last + 1 and at is not None and is_binding(at.fields) and between == ds - last - 1:
            ok = True
            detail = f"uncommitted records start after the binding at record {ds - 1} (no delta before it)"
        else:
            ok = False
            where = (
                f"the last consolidation is record {last}" if last >= 0 else "the log holds no consolidation"
            )
            detail = f"the commit says uncommitted deltas start at record {ds}, {where}" + (
                ", and deltas lie between" if at is not None and is_binding(at.fields) else ""
            )
        r.add("consolidation point", ok, ds, detail)
        if not ok:
            r.fail("consolidation point", detail, index=ds)

    def check_key_index(self) -> None:
        """The key index chain (spec §9.7) lists exactly each key's newest delta of the
        records it covers: reads trust it to skip every other record."""
        from thermo_cli.container.keyindex import newest_deltas

        r, reader = self.report, self.reader
        t = reader.trailer
        if t.keys is None:
            return
        try:
            blocks = []
            covered, ref = t.log_size, t.keys
            while ref is not None and covered > t.dirty_start:
                block = reader.key_index(ref)
                blocks.append((block, covered))
                covered, ref = block.first, block.prev
            recs = list(reader.iter_records(covered))
        except FormatError as exc:
            r.fail("key index", f"the key index of the uncommitted deltas is unreadable: {exc}")
            return
        for block, end in blocks:
            want = newest_deltas(recs[block.first - covered : end - covered], block.first)
            try:
                got = block.items() if _ordered(block) else {}
            except FormatError as exc:
                r.fail("key index", f"the key index of the uncommitted deltas is unreadable: {exc}")
                return
            if got != want:
                detail = f"the key index over records {block.first}..{end} does not list their newest deltas"
                r.add("key index", False, len(blocks), detail)
                r.fail("key index", detail, index=block.first)
                return
        r.add(
            "key index", True, len(blocks), f"{len(blocks)} key index block(s) match the uncommitted deltas"
        )

    # --- checkpoints in the log ----------------------------------------------------------

    def check_checkpoints(self) -> None:
        r, scan = self.report, self.scan
        assert scan is not None
        bound = [ev for ev in scan.events if is_state_event(ev.event)]
        bad = None
        for ev in bound:
            f = ev.event.fields
            if f["log_size"] != ev.index:
                bad = (
                    ev,
                    f"record {ev.index} ({ev.event.kind}): says the log had {f['log_size']} "
                    f"records before it, it had {ev.index}",
                )
            elif f["log_root"] != ev.prefix_root:
                bad = (
                    ev,
                    f"record {ev.index} ({ev.event.kind}): its log root does not match the "
                    f"{ev.index} records before it (history rewritten)",
                )
            elif len(f["state_digest"]) != 32:
                bad = (ev, f"record {ev.index} ({ev.event.kind}): state digest is not 32 bytes")
            if bad:
                break
        odd = [ev for ev in scan.events if ev.event.kind in STATE_KINDS and not is_state_event(ev.event)]
        if bad is None and odd:
            ev = odd[0]
            bad = (ev, f"record {ev.index} ({ev.event.kind}): lacks log_size/log_root/state_digest")
        if bad is None:
            r.add(
                "checkpoints",
                True,
                len(bound),
                f"{len(bound)} consolidation/checkpoint records bind the log root before them",
            )
        else:
            ev, reason = bad
            r.add("checkpoints", False, len(bound), reason)
            r.fail("checkpoints", reason, index=ev.index)

    # --- layers ---------------------------------------------------------------------------

    def check_layers(self) -> None:
        r = self.report
        cb = None if self.progress is None else (lambda n: self.progress("layers", n))  # type: ignore[misc]
        self.layers = scan = scan_layers(self.reader, progress=cb)
        r.details["value_bytes"] = scan.value_bytes
        if scan.ok:
            r.add(
                "chunk digests",
                True,
                scan.chunks,
                f"{scan.chunks} chunks holding {scan.entries} entries match their digests",
            )
        else:
            fault = scan.faults[0]
            reason = f"{fault.what}: {fault.reason}"
            r.add("chunk digests", False, max(0, scan.chunks - len(scan.faults)), reason)
            r.fail("chunk digests", reason, key=fault.key)

    def check_state(self) -> None:
        r, scan, layers = self.report, self.scan, self.layers
        assert scan is not None and layers is not None
        self.note_unbound_commits()
        bound = [ev for ev in scan.events if is_state_event(ev.event)]
        actual = layers.digest()
        r.details["state_digest"] = actual.hex()
        if not layers.ok:
            r.add("state digest", False, layers.entries, "not computed: damaged chunks (see chunk digests)")
            return
        if not bound:
            detail = f"{layers.entries} entries; no consolidation or checkpoint binds the layers yet"
            r.add("state digest", True, layers.entries, detail)
            if layers.entries:
                r.notes.append(
                    "the layers are not bound to the log yet: run `thermo checkpoint` to bind them"
                )
            return
        last = bound[-1]
        later = [
            ev
            for ev in scan.events
            if ev.index > last.index and ev.event.kind not in NON_LAYER_KINDS and not is_state_event(ev.event)
        ]
        if later:
            kinds = sorted({ev.event.kind for ev in later})
            detail = (
                f"{layers.entries} entries; changed by {len(later)} event(s) ({', '.join(kinds)}) "
                f"after the digest bound at record {last.index}: not bound"
            )
            r.add("state digest", True, layers.entries, detail)
            r.notes.append(
                f"the layers changed after record {last.index} ({', '.join(kinds)}) and are not "
                "bound to the log: run `thermo checkpoint` to bind them"
            )
            return
        if last.event.fields["state_digest"] != actual:
            reason = (
                f"the layers ({layers.entries} entries) do not match the state digest bound at "
                f"record {last.index} ({last.event.kind}): an entry was changed, added or removed"
            )
            r.add("state digest", False, layers.entries, reason)
            r.fail("state digest", reason, index=last.index)
        else:
            r.add(
                "state digest",
                True,
                layers.entries,
                f"{layers.entries} entries match the digest bound at record {last.index} ({last.event.kind})",
            )

    # --- meta ---------------------------------------------------------------------------

    def check_meta(self) -> None:
        """The meta digest bound by the newest binding record against the meta block.

        A mismatch means the name, id, configuration, custom metadata or extension state
        changed without a binding (so without a logged change a signature could cover): a
        failure, naming the fields the log's ``configure``/``rename``/``extension`` events
        and checkpoint origins can tell apart. Bindings written before meta binding carry
        no digest: a note, unless a newer binding did carry one (a stripped binding).
        """
        r, scan = self.report, self.scan
        assert scan is not None
        if self.meta_digest is None or self.meta_map is None:
            return
        r.details["meta_digest"] = self.meta_digest.hex()
        bound = [ev for ev in scan.events if is_state_event(ev.event)]
        if not bound:
            r.add("meta digest", True, 0, "no binding record binds the configuration yet")
            r.notes.append(
                "the configuration is not bound to the log yet: run `thermo checkpoint` to bind it"
            )
            return
        last = bound[-1]
        claimed = last.event.fields.get("meta_digest")
        if not isinstance(claimed, bytes):
            self._meta_unbound(
                last, [ev for ev in bound if isinstance(ev.event.fields.get("meta_digest"), bytes)]
            )
            return
        if claimed == self.meta_digest:
            r.add(
                "meta digest",
                True,
                len(META_FIELDS),
                f"name, id, configuration, custom metadata and extension state match the digest bound "
                f"at record {last.index} ({last.event.kind})",
            )
            return
        fields = meta_differences(scan.events, self.meta_map)
        which = ", ".join(fields) if fields else "which field is not known (no logged change names one)"
        reason = (
            f"the meta block does not match the meta digest bound at record {last.index} "
            f"({last.event.kind}): changed without a logged, bound change: {which}"
        )
        r.details["meta_fields_changed"] = fields
        r.add("meta digest", False, len(META_FIELDS), reason)
        r.fail("meta digest", reason, index=last.index)

    def _meta_unbound(self, last: Any, with_meta: list[Any]) -> None:
        r = self.report
        if with_meta:
            reason = (
                f"record {last.index} ({last.event.kind}) binds no meta digest although record "
                f"{with_meta[-1].index} does: the configuration lost its binding"
            )
            r.add("meta digest", False, 0, reason)
            r.fail("meta digest", reason, index=last.index)
            return
        text = "configuration not bound (written before format 2.1 meta binding)"
        r.add("meta digest", True, 0, text)
        r.notes.append(f"{text}: run `thermo checkpoint` to bind it")

    def note_unbound_commits(self) -> None:
        """Note each earlier commit that changed the layers without binding them.

        Engine layer operations log unbound events and the writer binds the state once per
        commit (a ``bind``, ``consolidate`` or ``checkpoint`` record before the commit
        ends), so every committed layer state is covered by a digest. A commit that ends
        with layer changes not yet bound was not written by this thermo (or bypassed its
        store); its intermediate state cannot be checked, which is a note, not a failure:
        the state a later binding covers is still checked. The last commit is covered by
        the "state digest" check itself.
        """
        scan = self.scan
        assert scan is not None
        ends = [n for n in self.commit_sizes[:-1] if n > 0]
        if not ends:
            return
        gaps: list[str] = []
        pending: list[Any] = []
        events = iter(sorted(scan.events, key=lambda e: e.index))
        ev = next(events, None)
        for end in ends:
            while ev is not None and ev.index < end:
                if is_state_event(ev.event):
                    pending = []
                elif ev.event.kind not in NON_LAYER_KINDS:
                    pending.append(ev)
                ev = next(events, None)
            if pending:
                kinds = ", ".join(sorted({p.event.kind for p in pending}))
                gaps.append(f"records {pending[0].index}-{end - 1} ({kinds})")
                pending = []
        if gaps:
            self.report.notes.append(
                f"{len(gaps)} earlier commit(s) changed the layers without binding the state digest: "
                f"{'; '.join(gaps[:3])}{' …' if len(gaps) > 3 else ''}"
            )

    # --- signatures -----------------------------------------------------------------------

    def check_signatures(self) -> None:
        r, scan = self.report, self.scan
        assert scan is not None
        by_index = {ev.index: ev for ev in scan.events}
        sigs = [ev for ev in scan.events if ev.event.kind == SIGNATURE_KIND]
        valid: list[tuple[int, str, bytes, int]] = []  # (record, name, public key, checkpoint index)
        failure = None
        for ev in sigs:
            problem, item = self._check_signature(ev, by_index)
            if problem is not None:
                failure = failure or (ev.index, problem)
            elif item is not None:
                valid.append(item)
        in_file = len(valid)
        if self.detached is not None:
            valid.extend(self.check_detached(by_index))
        trusted_ok, missing = self._match_trusted(valid)
        self.state_authentication(valid, trusted_ok, by_index)
        if not sigs and not self.pubkeys:
            return
        signed_sizes = [by_index[c].event.fields["log_size"] for _, _, _, c in trusted_ok]
        if failure is not None:
            r.add("signatures", False, len(valid), failure[1])
            r.fail("signatures", failure[1], index=failure[0])
            return
        if missing:
            reason = "no valid signature by " + ", ".join(missing)
            r.add("signatures", False, len(trusted_ok), reason)
            r.fail("signatures", reason)
            return
        if self.pubkeys and not signed_sizes:
            detail = "no signature in the file by the given keys; each of them signed a given note"
        elif self.pubkeys:
            newest = max(signed_sizes)
            detail = (
                f"{len(trusted_ok)} signature(s) by the given key(s) verify; the newest signed "
                f"checkpoint covers {newest} of {scan.size} records"
            )
            ignored = len(valid) - len(trusted_ok)
            if ignored:
                detail += f"; {ignored} signature(s) by other keys ignored"
            if len(valid) > in_file:
                detail += f" ({len(valid) - in_file} of them on the detached note)"
        else:
            detail = (
                f"{len(valid)} signature(s) verify with the keys they name "
                "(not trusted: pass pubkeys to check who signed)"
            )
        r.add("signatures", True, len(valid), detail)

    def state_authentication(
        self,
        valid: list[tuple[int, str, bytes, int]],
        trusted_ok: list[tuple[int, str, bytes, int]],
        by_index: dict[int, Any],
    ) -> None:
        """Say what the signatures authenticate (``report.authentication``) and, with
        ``require_signed_head``, fail unless a given key signed the head."""
        r, scan = self.report, self.scan
        assert scan is not None
        sig_records = sorted(ev.index for ev in scan.events if ev.event.kind == SIGNATURE_KIND)
        auth = authentication_of(
            size=scan.size,
            trusted=bool(self.pubkeys),
            signed=[(name, by_index[c].event) for _, name, _, c in (trusted_ok if self.pubkeys else valid)],
            checkpoints=[c for _, _, _, c in (trusted_ok if self.pubkeys else valid)],
            signature_records=sig_records,
        )
        r.authentication = auth.to_json()
        self.auth = auth

    def check_signed_head(self) -> None:
        """With ``require_signed_head``: fail unless a given key signed a checkpoint that
        covers the head. Runs last, so a head that fails another check never passes."""
        r, auth = self.report, self.auth
        if not self.require_signed_head:
            return
        if auth is None:
            detail = "not checked: the log did not read"
        elif not auth.head_signed:
            detail = auth.summary
        elif not r.ok:
            detail = (
                "the signed checkpoint does not vouch for a file that fails a check (see the first failure)"
            )
        else:
            r.add("signed head", True, auth.signed_records, auth.summary)
            return
        r.add("signed head", False, 0 if auth is None else auth.signed_records, detail)
        r.fail("signed head", detail)

    def _check_signature(self, ev: Any, by_index: dict[int, Any]) -> tuple[str | None, Any]:
        f = ev.event.fields
        i = ev.index
        try:
            target = int(f["checkpoint"])
            sig = note.NoteSignature(str(f["name"]), bytes(f["key_id"]), bytes(f["signature"]))
            pub = bytes(f["public_key"])
        except (KeyError, TypeError, ValueError):
            return f"record {i}: malformed signature record", None
        cp_ev = by_index.get(target)
        if cp_ev is None or not is_state_event(cp_ev.event) or target >= i:
            return (
                f"record {i}: signature refers to record {target}, which is not an earlier checkpoint"
            ), None
        body = checkpoint_of(cp_ev.event, self.origin).body()
        if not note.verify_signature(body, sig, pub):
            return (
                f"record {i}: signature by {sig.name!r} does not verify over the checkpoint at "
                f"record {target}"
            ), None
        return None, (i, sig.name, pub, target)

    def _match_trusted(
        self, valid: list[tuple[int, str, bytes, int]]
    ) -> tuple[list[tuple[int, str, bytes, int]], list[str]]:
        """The valid signatures by given keys, and the given keys that signed nothing: not
        in the file, not the detached note, not the saved (``since``) note — a witness's
        key cosigns a note, never the file."""
        trusted_ok: list[tuple[int, str, bytes, int]] = []
        missing: list[str] = []
        on_notes = self._keys_signing_notes()
        for i, key in enumerate(self.pubkeys):
            mine = [v for v in valid if v[2] == key.raw and (key.name is None or key.name == v[1])]
            if mine:
                trusted_ok.extend(mine)
            elif i not in on_notes:
                missing.append(key.name or key.source or key.raw.hex()[:16])
        return trusted_ok, missing

    def _keys_signing_notes(self) -> set[int]:
        """Positions in ``pubkeys`` of the keys with a valid signature on a given note."""
        trusted = [(k.name, k.raw) for k in self.pubkeys]
        found: set[int] = set()
        for given in (self.since, self.detached):
            if given is not None:
                found.update(note.check_note(given, trusted).keys)
        return found

    # --- a detached signed note -----------------------------------------------------------

    def check_detached(self, by_index: dict[int, Any]) -> list[tuple[int, str, bytes, int]]:
        """Check the detached note (signed by a given key, a checkpoint of this log) and
        return its trusted signatures as (-1, name, key, checkpoint record) when its text is
        exactly the checkpoint the file binds at its size, so they authenticate the file;
        an empty list when it only vouches for a prefix of the log (or fails)."""
        r, scan = self.report, self.scan
        assert scan is not None and self.detached is not None
        trusted = [(k.name, k.raw) for k in self.pubkeys]
        res = note.check_note(self.detached, trusted)
        reason = None
        if res.invalid:
            reason = f"signature by {res.invalid[0]!r} does not verify (the text was altered)"
        elif not res.verified:
            reason = "not signed by any of the given keys"
        cp = None
        if reason is None:
            try:
                cp = note.parse_checkpoint(self.detached.body)
            except FormatError as exc:
                reason = str(exc)
        if reason is None and cp is not None:
            reason = self._not_extending(cp)
        if reason is not None or cp is None:
            reason = f"detached note: {reason}"
            r.add("note", False, 0, reason)
            r.fail("note", reason)
            return []
        at = by_index.get(cp.size)
        binds = at is not None and is_state_event(at.event)
        if at is not None and binds and checkpoint_of(at.event, self.origin).body() != self.detached.body:
            reason = f"detached note: record {cp.size} binds another state or meta digest than the note"
            r.add("note", False, cp.size, reason)
            r.fail("note", reason, index=cp.size)
            return []
        covers = (
            f"the checkpoint the file binds at record {cp.size} of {scan.size}"
            if binds
            else f"the first {cp.size} of {scan.size} records (log only: no state bound at that size)"
        )
        r.add("note", True, len(res.verified), f"{res.describe()}; covers {covers}")
        if not binds:
            return []
        return [(-1, name, trusted[k][1], cp.size) for k, name in zip(res.keys, res.verified, strict=True)]

    def _not_extending(self, cp: note.Checkpoint) -> str | None:
        """Why today's log is not an extension of checkpoint ``cp`` (None when it is)."""
        scan = self.scan
        assert scan is not None and scan.leaves is not None
        if cp.origin != self.origin:
            return f"the checkpoint is for {cp.origin!r}, this file's log is {self.origin!r}"
        n, m = scan.size, cp.size
        if m > n:
            return f"the log has {n} records, fewer than the {m} of the checkpoint"
        proof = merkle.consistency_proof(scan.leaves, m)
        ok = merkle.verify_consistency(m, n, cp.root, scan.root, proof) if m else cp.root == merkle.EMPTY_ROOT
        return None if ok else f"the first {m} records of the log do not hash to the checkpoint's root"

    # --- since a saved checkpoint --------------------------------------------------------

    def check_since(self) -> None:
        r, scan = self.report, self.scan
        assert scan is not None and self.since is not None
        try:
            cp = note.parse_checkpoint(self.since.body)
        except FormatError as exc:
            r.add("since", False, 0, f"saved checkpoint: {exc}")
            r.fail("since", f"saved checkpoint: {exc}")
            return
        if not self._since_signatures():
            return
        if cp.origin != self.origin:
            reason = f"the saved checkpoint is for {cp.origin!r}, this file's log is {self.origin!r}"
            r.add("since", False, 0, reason)
            r.fail("since", reason)
            return
        n, m = scan.size, cp.size
        if m > n:
            reason = (
                f"the log has {n} records, fewer than the {m} of the saved checkpoint: "
                "it was truncated or rolled back"
            )
            r.add("since", False, n, reason)
            r.fail("since", reason, index=max(0, n - 1))
            return
        assert scan.leaves is not None
        proof = merkle.consistency_proof(scan.leaves, m)
        ok = merkle.verify_consistency(m, n, cp.root, scan.root, proof) if m else cp.root == merkle.EMPTY_ROOT
        r.details["consistency_proof"] = {
            "old_size": m,
            "new_size": n,
            "old_root": cp.root.hex(),
            "new_root": scan.root.hex(),
            "proof": [h.hex() for h in proof],
        }
        if not ok:
            reason = (
                f"today's log does not extend the saved checkpoint: the first {m} records no longer "
                "hash to its root (history rewritten or forked)"
            )
            r.add("since", False, m, reason)
            r.fail("since", reason)
            return
        at = next((ev for ev in scan.events if ev.index == m and is_state_event(ev.event)), None)
        for what, saved, key in (
            ("state", cp.state_digest, "state_digest"),
            ("meta", cp.meta_digest, "meta_digest"),
        ):
            if saved is not None and at is not None and at.event.fields.get(key) != saved:
                reason = f"record {m} binds another {what} digest than the saved checkpoint"
                r.add("since", False, m, reason)
                r.fail("since", reason, index=m)
                return
        r.add(
            "since",
            True,
            m,
            f"consistency proof {m} → {n} ({len(proof)} hashes) verifies: "
            f"today's log extends the saved checkpoint",
        )

    def _since_signatures(self) -> bool:
        """Signatures of the saved note: any invalid one by a known key fails; an unsigned
        note is the auditor's own record and is accepted; a signed one needs a given key."""
        r = self.report
        assert self.since is not None
        trusted = [(k.name, k.raw) for k in self.pubkeys]
        res = note.check_note(self.since, trusted)
        if res.invalid:
            reason = (
                f"saved checkpoint: signature by {res.invalid[0]!r} does not verify (the text was altered)"
            )
            r.add("since signatures", False, len(res.verified), reason)
            r.fail("since signatures", reason)
            return False
        if not self.since.signatures:
            r.notes.append("the saved checkpoint is unsigned: it is trusted as the auditor's own record")
        elif self.pubkeys:
            if not res.verified:
                reason = "saved checkpoint: not signed by any of the given keys"
                r.add("since signatures", False, 0, reason)
                r.fail("since signatures", reason)
                return False
            r.add("since signatures", True, len(res.verified), res.describe())
        else:
            r.notes.append("the saved checkpoint's signatures were not checked (no pubkeys given)")
        return True


def _ordered(block: KeyIndex) -> bool:
    """Whether a key index block lists its keys strictly ascending, each part's within its
    range (above the previous part's last key, up to its own), as readers' binary search
    assumes."""
    lower: bytes | None = None
    for last, table in block.tables():
        keys = table.keys()
        if not all(a < b for a, b in itertools.pairwise(keys)):
            return False
        if keys and lower is not None and keys[0] <= lower:
            return False
        if last is not None and (not keys or keys[-1] != last):
            return False
        lower = last
    return True
