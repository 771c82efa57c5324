"""The verification report shared by every verifier (v2 containers, legacy files).

A report names each check that ran, how many items it covered, and the first failure with
its record index or key and a reason, so a person and a script read the same facts.
``notes`` states the limits of what was checked (e.g. what a legacy hash does not cover)
instead of claiming more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Check:
    name: str
    ok: bool
    count: int = 0
    detail: str = ""


@dataclass(slots=True)
class Failure:
    check: str
    reason: str
    index: int | None = None
    key: str | None = None


@dataclass(slots=True)
class VerifyReport:
    path: str
    format: str
    checks: list[Check] = field(default_factory=list)
    failure: Failure | None = None
    head_hash: str | None = None
    records: int = 0
    notes: list[str] = field(default_factory=list)
    torn_tail_bytes: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    """Machine-readable extras of a check (e.g. a consistency proof), JSON-ready."""
    authentication: dict[str, Any] | None = None
    """What the signatures authenticate: ``status`` (signed, partially-signed, unsigned,
    signatures-unverified), ``signers``, ``signed_records``, ``total_records``,
    ``head_signed``, ``summary`` (one line); None where no verifier states it."""

    @property
    def ok(self) -> bool:
        return self.failure is None and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, count: int = 0, detail: str = "") -> Check:
        check = Check(name, ok, count, detail)
        self.checks.append(check)
        return check

    def fail(self, check: str, reason: str, *, index: int | None = None, key: str | None = None) -> None:
        """Record the first failure only: later ones are usually consequences of it."""
        if self.failure is None:
            self.failure = Failure(check, reason, index, key)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON; the checked file is ``file``, as in every command's --json."""
        doc = asdict(self)
        doc["file"] = doc.pop("path")
        doc["ok"] = self.ok
        return doc
