"""Audit commands: verify, keygen, sign, checkpoint, prove, verify-proof.

Thin wrappers over :mod:`thermo_cli.operations.audit`: parse, call, format. Reports go to stdout
(they are the data an auditor asked for); a failed check prints its report and exits 1.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from thermo_cli.cli._args import SyncOpt
from thermo_cli.cli._common import VerificationFailed, err, flag_hints, print_json, shown
from thermo_cli.cli._io import named_file, stdin_as_file

_PUBKEY_HELP = (
    "Trusted public key: an OpenSSH .pub line, a PEM file, or a C2SP verifier key "
    "name+keyid+base64 (repeatable)."
)


class KeyFormat(StrEnum):
    openssh = "openssh"
    pem = "pem"


FileArg = Annotated[str, typer.Argument(help="A .thermo file.", show_default=False, callback=named_file)]
"""A file checkpoint and sign append to: named, never ``-`` (and never a URL: writers refuse them)."""
InputFileArg = Annotated[
    str,
    typer.Argument(
        help="A .thermo file (or a URL); '-' reads stdin.", show_default=False, callback=stdin_as_file
    ),
]
PubkeyOpt = Annotated[
    list[str] | None, typer.Option("--pubkey", "-k", help=_PUBKEY_HELP, metavar="KEY", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
PassOpt = Annotated[
    str | None,
    typer.Option(
        "--passphrase",
        help="Key passphrase (visible to other users in ps; prefer --passphrase-file).",
        show_default=False,
    ),
]
PassFileOpt = Annotated[
    Path | None,
    typer.Option("--passphrase-file", help="Read the key passphrase from this file.", show_default=False),
]
OutOpt = Annotated[
    str | None,
    typer.Option("--out", "-o", help="Write the note or proof here (default: stdout).", show_default=False),
]


def _passphrase(passphrase: str | None, passphrase_file: Path | None) -> bytes | None:
    from thermo_cli.errors import ValidationError

    if passphrase is not None and passphrase_file is not None:
        raise ValidationError("give --passphrase or --passphrase-file, not both")
    if passphrase_file is not None:
        text = passphrase_file.read_bytes().rstrip(b"\r\n")
        if not text:
            raise ValidationError(f"{passphrase_file}: passphrase file is empty")
        return text
    if passphrase is not None:
        if not passphrase:
            raise ValidationError("--passphrase: must not be empty")
        return passphrase.encode("utf-8")
    return None


def _load_pubkeys(paths: list[str] | None) -> list[Any]:
    from thermo_cli.operations.audit.keys import load_public

    return [load_public(p) for p in paths or []]


def _mark(ok: bool) -> str:
    return "ok  " if ok else "FAIL"


def print_report(report: Any) -> None:
    """The human form of a VerifyReport on stdout: one line per check, then the verdict."""
    lines = [f"{shown(report.path)}: {report.format}"]
    width = max((len(c.name) for c in report.checks), default=0)
    for c in report.checks:
        lines.append(f"  {_mark(c.ok)} {c.name:<{width}}  {c.count:>10}  {flag_hints(c.detail)}")
    if report.head_hash:
        lines.append(f"  head {report.head_hash}")
    f = report.failure
    if f is not None:
        where = []
        if f.index is not None:
            where.append(f"record {f.index}")
        if f.key is not None:
            where.append(f"key {f.key!r}")
        at = f" at {', '.join(where)}" if where else ""
        lines.append(f"FIRST FAILURE [{f.check}]{at}: {flag_hints(f.reason)}")
    for n in report.notes:
        lines.append(f"  note: {flag_hints(n)}")
    auth = getattr(report, "authentication", None)
    if auth:
        lines.append(f"authenticity: {flag_hints(auth['summary'])}")
    lines.append("INTACT" if report.ok else "FAILED")
    typer.echo("\n".join(lines))


def _finish(report: Any, as_json: bool) -> None:
    if as_json:
        doc = report.to_json()
        if "file" in doc:
            doc["file"] = shown(doc["file"])
        print_json(doc)
    else:
        print_report(report)
    if not report.ok:
        raise VerificationFailed()


def _write_text(out: str | None, text: str, *, force: bool = False, sync: bool = False) -> None:
    """``text`` to stdout, or to the new file ``out`` (an existing one only with ``force``;
    fsynced with ``sync``)."""
    from thermo_cli.cli._common import open_output

    if out is None or out == "-":
        typer.echo(text, nl=False)
        return
    with open_output(out, overwrite=force, durable=sync) as fh:
        fh.write(text.encode("utf-8"))


commands = typer.Typer(add_completion=False)
"""This module's commands; the root group loads them when one of them runs."""


def _stdin_among(ctx: typer.Context, values: list[str]) -> list[str]:
    """``-`` among verify's files is stdin (saved to a temporary file), at most once."""
    if values.count("-") > 1:
        raise typer.BadParameter("'-' (stdin) can be given once")
    return [stdin_as_file(ctx, v) for v in values]


@commands.command("verify")
def verify(
    files: Annotated[
        list[str],
        typer.Argument(
            help="A .thermo file or a Rust-crate save file ('-' reads stdin); several files, globs, "
            "directories or URL prefixes (s3://bucket/models/) audit a fleet.",
            show_default=False,
            callback=_stdin_among,
        ),
    ],
    pubkey: PubkeyOpt = None,
    since: Annotated[
        Path | None,
        typer.Option(
            "--since",
            help="A saved checkpoint note (thermo checkpoint --out): prove today's log extends it.",
            show_default=False,
        ),
    ] = None,
    detached: Annotated[
        Path | None,
        typer.Option(
            "--note",
            help=(
                "A detached signed checkpoint note (signatures kept outside the file, witnesses' "
                "cosignatures included): check it is a checkpoint of this log signed by a --pubkey key."
            ),
            show_default=False,
        ),
    ] = None,
    deep: Annotated[bool, typer.Option("--deep", help="Decode every log record strictly (slower).")] = False,
    require_signed_head: Annotated[
        bool,
        typer.Option(
            "--require-signed-head",
            help="Fail unless a --pubkey key signed a checkpoint covering the last record, layers and meta.",
        ),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Fleet: verify N files at once in local processes.",
            show_default=False,
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="ADDRESS",
            help="Fleet: run the per-file checks on the Dask cluster whose scheduler is at ADDRESS.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every hash, link, Merkle root, chunk digest, state digest and signature.

    Exit 0 when intact, 1 when a check fails (the report names the first failure), 3 when unreadable.
    The report ends with what is authenticated: signed by whom up to which record, or not at all.
    With several files (or a glob, directory, URL prefix, --jobs or --dask) it prints one JSON
    line per file and a summary line, and exits 1 if any file fails or cannot be read.

    Example: thermo verify memory.thermo --pubkey alice.pub --since cp-monday.txt
    Example: thermo verify memory.thermo --note cp.txt -k alice.pub -k witness.vkey

    Example: thermo verify 's3://models/run-7/' --jobs 4
    """
    from thermo_cli.errors import ValidationError

    if require_signed_head and not pubkey:
        raise ValidationError("--require-signed-head needs --pubkey: only a given key can authenticate")
    if detached is not None and not pubkey:
        raise ValidationError("--note needs --pubkey: a detached note is worth only the keys that signed it")
    keys = _load_pubkeys(pubkey)
    if len(files) == 1 and jobs is None and dask is None and not _is_pattern(files[0]):
        _verify_single(files[0], keys, since, detached, deep, require_signed_head, as_json)
        return
    if since is not None or detached is not None:
        raise ValidationError("--since and --note apply to one file; a fleet is verified without them")
    if jobs is not None and dask is not None:
        raise ValidationError("--jobs and --dask are alternatives")
    _verify_fleet(files, keys, deep, require_signed_head, jobs or 1, dask)


def _is_pattern(target: str) -> bool:
    """Whether a verify argument names a set of files (a glob, a directory, a URL prefix)."""
    import os

    from thermo_cli.config.remote import is_url

    if any(c in target for c in "*?["):
        return True
    return target.endswith("/") if is_url(target) else os.path.isdir(target)


def _verify_single(
    file: str,
    keys: list[Any],
    since: Path | None,
    detached: Path | None,
    deep: bool,
    require_signed_head: bool,
    as_json: bool,
) -> None:
    import os

    from thermo_cli.cli._common import progress
    from thermo_cli.config.remote import is_url
    from thermo_cli.operations.audit.verify import verify_file

    size = os.path.getsize(file) if not is_url(file) and os.path.isfile(file) else 0
    with progress("verify", size, min_total=64 << 20, unit="bytes") as bar:
        report = verify_file(
            file,
            pubkeys=keys,
            since=since,
            deep=deep,
            progress=lambda _stage, n: bar.update(n),
            require_signed_head=require_signed_head,
            detached_note=detached,
        )
    _finish(report, as_json)


def _verify_fleet(
    files: list[str], keys: list[Any], deep: bool, require_signed_head: bool, jobs: int, dask: str | None
) -> None:
    """One JSON line per file as each is verified, then the summary line; exit 1 unless all pass."""
    import sys

    from thermo_cli.cli._common import json_bytes
    from thermo_cli.operations.audit.fleet import FleetOptions, FleetSummary, expand_targets, verify_fleet

    paths = expand_targets(files)
    options = FleetOptions(pubkeys=tuple(keys), deep=deep, require_signed_head=require_signed_head)
    summary = FleetSummary(engine="")
    out = sys.stdout
    for line in verify_fleet(paths, options, jobs=jobs, dask=dask, summary=summary):
        out.write(json_bytes(line).decode("utf-8") + "\n")
        out.flush()
    out.write(json_bytes(summary.to_json()).decode("utf-8") + "\n")
    out.flush()
    if not summary.ok:
        raise VerificationFailed()


@commands.command("keygen")
def keygen(
    out: Annotated[
        Path, typer.Argument(help="Private key file to create (public key: OUT.pub).", show_default=False)
    ],
    fmt: Annotated[KeyFormat, typer.Option("--format", help="Private key format.")] = KeyFormat.openssh,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Signer name used in signed notes [default: OUT's file name].",
            show_default=False,
        ),
    ] = None,
    passphrase: PassOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an Ed25519 signing key (mode 0600) and OUT.pub; print the verifier key.

    Example: thermo keygen ~/.thermo/alice --passphrase-file pass.txt
    """
    from thermo_cli.operations.audit.keys import generate

    pub = generate(out, fmt=fmt.value, passphrase=_passphrase(passphrase, passphrase_file), name=name)
    if as_json:
        print_json(
            {
                "private_key": str(out),
                "public_key": pub.source,
                "name": pub.name,
                "verifier_key": pub.vkey,
                "format": fmt.value,
            }
        )
    else:
        typer.echo(pub.vkey)
    err(f"thermo: wrote {out} (private, mode 0600) and {pub.source}; verifier key on stdout")


@commands.command("checkpoint")
def checkpoint_cmd(
    file: FileArg, out: OutOpt = None, sync: SyncOpt = False, as_json: JsonOpt = False
) -> None:
    """Bind log size, log root and state digest in a checkpoint record; print its note.

    Verifies the file first. Reuses the current checkpoint when only signatures followed it.

    Example: thermo checkpoint memory.thermo --out cp-monday.txt
    """
    from thermo_cli.operations.audit.checkpoints import checkpoint

    info = checkpoint(file)
    _emit_checkpoint(info, out, as_json, sync)
    verb = "appended checkpoint" if info.created else "current checkpoint is"
    err(
        f"thermo: {verb} record {info.index} ({info.checkpoint.size} records, "
        f"{len(info.note.signatures)} signature(s))"
    )


@commands.command("sign")
def sign_cmd(
    file: FileArg,
    key: Annotated[
        Path, typer.Option("--key", help="Ed25519 private key (from thermo keygen).", show_default=False)
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Signer name [default: the comment of KEY.pub, else KEY's file name].",
            show_default=False,
        ),
    ] = None,
    passphrase: PassOpt = None,
    passphrase_file: PassFileOpt = None,
    out: OutOpt = None,
    sync: SyncOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Sign the current checkpoint (C2SP signed note); the signature is stored in the file.

    Example: thermo sign memory.thermo --key ~/.thermo/alice --out cp-signed.txt
    """
    from thermo_cli.operations.audit.checkpoints import sign
    from thermo_cli.operations.audit.keys import load_private, signer_name

    private = load_private(key, _passphrase(passphrase, passphrase_file))
    signer = name if name is not None else signer_name(key)
    info = sign(file, private, signer)
    _emit_checkpoint(info, out, as_json, sync)
    err(
        f"thermo: signed checkpoint record {info.index} as {signer!r} "
        f"({len(info.note.signatures)} signature(s) now)"
    )


@commands.command("prove")
def prove_cmd(
    file: InputFileArg,
    key: Annotated[str, typer.Argument(help="The entry's key.", show_default=False)],
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer",
            help="hot, warm, cool or cold [default: the hottest layer holding KEY].",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the proof here (default: stdout; an existing file needs --force).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing --out file.")] = False,
    sync: SyncOpt = False,
) -> None:
    """Print an inclusion proof of an entry against the checkpointed state digest (JSON).

    Example: thermo prove memory.thermo weights/layer0 > proof.json
    """
    from thermo_cli.cli._common import json_bytes
    from thermo_cli.model import Layer
    from thermo_cli.operations.audit.proofs import prove

    doc = prove(file, key, layer=None if layer is None else Layer.parse(layer))
    _write_text(out, json_bytes(doc, pretty=True).decode("utf-8") + "\n", force=force, sync=sync)


@commands.command("verify-proof")
def verify_proof_cmd(
    proof: Annotated[
        str, typer.Argument(help="A proof from thermo prove ('-' for stdin).", show_default=False)
    ],
    pubkey: PubkeyOpt = None,
    value: Annotated[
        Path | None,
        typer.Option(
            "--value", help="Also check that this file holds the entry's value bytes.", show_default=False
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check an entry proof without the thermogram file: signatures, inclusion, value.

    Example: thermo verify-proof proof.json --pubkey alice.pub
    """
    import orjson

    from thermo_cli.cli._common import open_input
    from thermo_cli.errors import CorruptError
    from thermo_cli.operations.audit.proofs import MAX_PROOF_BYTES, verify_proof

    with open_input(proof) as fh:
        data = fh.read(MAX_PROOF_BYTES + 1)
    if len(data) > MAX_PROOF_BYTES:
        raise CorruptError(f"{proof}: larger than {MAX_PROOF_BYTES} bytes, not a proof")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CorruptError(f"{proof}: not JSON ({exc})") from None
    report = verify_proof(
        doc,
        pubkeys=_load_pubkeys(pubkey),
        value=None if value is None else value.read_bytes(),
        source="<stdin>" if proof == "-" else proof,
    )
    _finish(report, as_json)


def _emit_checkpoint(info: Any, out: str | None, as_json: bool, sync: bool = False) -> None:
    """The note to --out (or stdout, fsynced with ``sync``); with --json the JSON goes to stdout instead."""
    if out is not None:
        # the file changed already: always deliver the note
        _write_text(out, info.note.text(), force=True, sync=sync)
    if as_json:
        print_json(info.to_json())
    elif out is None:
        _write_text(None, info.note.text())
