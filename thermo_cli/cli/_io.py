"""Input helpers for the commands that read a stream: its size, and a progress-counting wrapper."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

PROGRESS_MIN_BYTES = 16 * 1024 * 1024
"""Inputs smaller than this finish too fast for a progress bar to help."""


class CountingReader:
    """Wraps a binary stream to advance a progress bar by the bytes read."""

    def __init__(self, raw: Any, bar: Any) -> None:
        self._raw = raw
        self._bar = bar

    def read1(self, n: int = -1) -> bytes:
        read = getattr(self._raw, "read1", None) or self._raw.read
        data: bytes = read(n)
        self._bar.advance(len(data))
        return data

    def read(self, n: int = -1) -> bytes:
        return self.read1(n)


def input_size(path: str) -> int | None:
    """Bytes in ``path`` (None for stdin or an unreadable path: the bar then just counts)."""
    if path == "-":
        return None
    with contextlib.suppress(OSError):
        return os.stat(path).st_size
    return None


def stream_name(path: str) -> str:
    """How messages name an input: its path, or ``<stdin>`` for ``-``."""
    return "<stdin>" if path == "-" else path


@contextlib.contextmanager
def lines_of(path: str) -> Iterator[None]:
    """A JSONL line error inside the block names the input too: ``d.jsonl: line 3: …``."""
    from thermo_cli.formats.jsonl import LineError, LineLimitError

    try:
        yield
    except (LineError, LineLimitError) as exc:
        exc.args = (f"{stream_name(path)}: {exc}",)
        raise


# --- '-' as a file argument -----------------------------------------------------------------

STDIN_NAME = "stdin"
"""The name stdin gets when it is saved to a temporary file (messages show ``<stdin>``)."""


def stdin_as_file(ctx: Any, value: Any) -> Any:
    """Argument callback: ``-`` means stdin, saved to a temporary file first.

    A thermogram (and a safetensors file) is read by seeking to its index, which a pipe
    cannot do, so ``curl …/f.thermo | thermo verify -`` reads the whole stream into a
    file that is removed when the command ends; any other value passes unchanged.
    """
    if value is None or str(value) != "-":
        return value
    import shutil
    import sys
    import tempfile

    from thermo_cli.errors import ValidationError

    if sys.stdin.isatty():
        raise ValidationError("'-' reads stdin, which is a terminal: pipe or redirect a file into it")
    from thermo_cli.cli._core import show_as

    directory = tempfile.mkdtemp(prefix="thermo-")
    ctx.call_on_close(lambda: shutil.rmtree(directory, ignore_errors=True))
    path = os.path.join(directory, STDIN_NAME)
    show_as(path, "<stdin>")
    source = getattr(sys.stdin, "buffer", None)
    with open(path, "wb") as out:
        if source is None:  # a text-only stream (tests)
            out.write(sys.stdin.read().encode("utf-8", "surrogateescape"))
        else:
            shutil.copyfileobj(source, out, 1 << 20)
    return type(value)(path)


def named_file(value: Any) -> Any:
    """Argument callback: a file changed in place (or created to be changed later) must be
    a real path; ``-`` is a usage error instead of a file literally named ``-``."""
    if value is not None and str(value) == "-":
        import typer

        raise typer.BadParameter("'-' cannot be used here: this file is changed in place, so name it")
    return value


def stdout_name(src: str, extension: str) -> str:
    """The temporary file name for an OUT ``-`` written from ``src``: ``src``'s stem (writers
    name a new thermogram after its file's stem) and the output format's extension."""
    from pathlib import Path

    stem = STDIN_NAME if src == "-" else Path(src.rstrip("/")).stem.removesuffix(".safetensors")
    return f"{stem or 'stdout'}.{extension}"


@contextlib.contextmanager
def output_path(out: str, filename: str = "stdout") -> Iterator[str]:
    """The path to write a new file to; for ``-`` a temporary file that is copied to stdout
    after the block succeeds (the writers need a seekable, checkable file). ``filename``
    names that temporary file, for writers that take the format from the extension or a
    default name from the stem."""
    if out != "-":
        yield out
        return
    import shutil
    import sys
    import tempfile

    from thermo_cli.cli._core import show_as

    directory = tempfile.mkdtemp(prefix="thermo-")
    try:
        path = os.path.join(directory, filename)
        show_as(path, "<stdout>")
        yield path
        sys.stdout.flush()
        target = getattr(sys.stdout, "buffer", None)
        with open(path, "rb") as fh:
            if target is None:  # a text-only stream (tests)
                sys.stdout.write(fh.read().decode("utf-8", "surrogateescape"))
            else:
                shutil.copyfileobj(fh, target, 1 << 20)
                target.flush()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


UPLOAD_HELP = (
    "Write the new file to this URL (s3://, gs://, memory://, file://) instead of OUT: written "
    "locally to a temporary file, verified, uploaded, the temporary file removed."
)


@contextlib.contextmanager
def local_then_upload(out: str | None, to: str | None, *, force: bool) -> Iterator[str]:
    """The local path a writing command writes: ``out`` itself, or with ``--to URL`` a
    temporary file (named like the URL's object, so defaults taken from OUT's stem are the
    same) that is verified and uploaded when the block succeeds and removed whatever
    happens. The URL is checked (protocol, bucket, existing object) before any work."""
    from thermo_cli.cli._common import usage_error

    if to is None:
        if out is None:
            raise usage_error("give the OUT file, or --to URL")
        yield out
        return
    if out is not None:
        raise usage_error("give the OUT file or --to URL, not both")
    import shutil
    import tempfile

    from thermo_cli.cli._common import err
    from thermo_cli.operations.upload import check_upload_target, upload_thermogram

    check_upload_target(to, overwrite=force)
    directory = tempfile.mkdtemp(prefix="thermo-upload-")
    try:
        name = to.rstrip("/").rsplit("/", 1)[-1] or "upload.thermo"
        path = os.path.join(directory, name)
        yield path
        report = upload_thermogram(path, to, overwrite=force)
        err(f"uploaded {report.bytes:,} bytes to {to} (verified before the upload)")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
