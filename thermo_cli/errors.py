"""One exception hierarchy for the whole library.

The library never prints or exits: it raises one of these. Each class carries a stable
``code`` (used in ``--json`` output, in the format's broken test vectors and by the CLI to
pick an exit code), so callers can branch on the kind of failure without parsing text.
Messages name the offending field, path or index, and fit on one line.
"""

from __future__ import annotations


class ThermoError(Exception):
    """Base class of every error the library raises on purpose."""

    code = "error"


# --- input given to the library -------------------------------------------------------


class ValidationError(ThermoError, ValueError):
    """A value handed to the library breaks a documented rule (names the field)."""

    code = "invalid"


class ChainError(ThermoError):
    """A delta does not link to the current head of the hash chain."""

    code = "chain-mismatch"


class NotFoundError(ThermoError, KeyError):
    """A key, layer or record that was asked for does not exist."""

    code = "not-found"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


# --- files read by the library -----------------------------------------------------------


class FormatError(ThermoError):
    """A file cannot be read as what it claims to be."""

    code = "format"


class BadMagicError(FormatError):
    """The file does not start with the .thermo magic (or was damaged in text mode)."""

    code = "bad-magic"


class UnsupportedVersionError(FormatError):
    """The file was written by a newer, incompatible major version of the format."""

    code = "unsupported-version"


class TruncatedError(FormatError):
    """The file ends before a structure it promises."""

    code = "truncated"


class CorruptError(FormatError):
    """A structure is malformed (bad CBOR, wrong types, non-canonical bytes, bad offsets)."""

    code = "corrupt"


class IntegrityError(FormatError):
    """A digest, hash or link does not match the bytes it covers."""

    code = "integrity"


class LimitExceededError(FormatError):
    """A length, count, size or depth read from input exceeds a safety cap.

    Raised before anything is allocated; the message names the cap and how to raise it
    where raising it is legitimate.
    """

    code = "limit-exceeded"


class LegacyFormatError(FormatError):
    """A Rust-crate JSON file is malformed; the message names the JSON path."""

    code = "legacy-format"

    def __init__(self, path: str, reason: str, *, source: str | None = None) -> None:
        prefix = f"{source}: " if source and source != "<file>" else ""
        super().__init__(f"{prefix}{path}: {reason}")
        self.path = path
        self.reason = reason
        self.source = source


class RemoteError(ThermoError):
    """A remote object (``s3://``, ``http(s)://`` …) cannot be read as the format needs:
    the URL is malformed or of an unknown protocol, its library is not installed, the
    server refuses or ignores range requests, or the connection fails."""

    code = "remote"


# --- operations refused ------------------------------------------------------------------


class RefusedError(ThermoError):
    """An operation would overwrite or convert something the caller did not ask to."""

    code = "refused"


class NewerMinorRefusedError(RefusedError, UnsupportedVersionError):
    """A write to a file of a newer minor format version: it is read, never written, since
    this writer would drop or misframe what the newer one stored (a refusal, exit 4)."""

    code = "unsupported-version"  # spec/FORMAT.md §3 names the refusal so


class LockError(ThermoError):
    """Another process holds the file's lock and waiting was not allowed or timed out."""

    code = "locked"


# --- quoting input in messages -----------------------------------------------------------


def quote(text: object, limit: int = 80) -> str:
    """``repr`` of user-provided input, shortened to about ``limit`` characters.

    Messages fit on one line even when the input is a 1 MiB key or tensor name: the start
    and the end are kept (they tell names apart) and the full length is given, e.g.
    ``'kkkk…kkkk' (1048576 characters)``. Non-text values are shown by their ``repr``,
    shortened the same way.
    """
    half = max(limit // 2, 1)
    if not isinstance(text, str):
        shown = repr(text)
        return shown if len(shown) <= limit else f"{shown[:half]}…{shown[-half:]}"
    if len(text) <= limit:
        return repr(text)
    return f"{text[:half] + '…' + text[-half:]!r} ({len(text)} characters)"
