"""Chain verification: walks entries in seq order and names the first damage it finds.

Pure: the caller feeds entries (from the database, in chunks) and the anchors it trusts,
i.e. the signed checkpoints (with whether their signature verified) and the chain head
record. A missing seq inside the range is a gap; entries missing at the end, below what an
anchor vouches for, are truncation; an entry whose own hash is consistent but differs from
an anchor's is rewritten history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from services.org.audit.chain import GENESIS_HASH, AuditEntry


class FailureKind(StrEnum):
    """Why a chain is broken (the API's ChainFailureKind without its prefix)."""

    ENTRY_HASH_MISMATCH = "ENTRY_HASH_MISMATCH"
    PREV_HASH_MISMATCH = "PREV_HASH_MISMATCH"
    SEQ_GAP = "SEQ_GAP"
    TRUNCATED = "TRUNCATED"
    CHECKPOINT_SIGNATURE_INVALID = "CHECKPOINT_SIGNATURE_INVALID"
    HEAD_HASH_MISMATCH = "HEAD_HASH_MISMATCH"


@dataclass(frozen=True)
class ChainFailure:
    """The first problem found."""

    kind: FailureKind
    seq: int
    message: str
    audit_log_id: str | None = None


@dataclass(frozen=True)
class ChainReport:
    """The outcome of a verification."""

    entries_checked: int
    head_seq: int
    head_hash: str
    checkpoints_checked: int
    failure: ChainFailure | None

    @property
    def valid(self) -> bool:
        """Whether nothing was wrong."""
        return self.failure is None


@dataclass(frozen=True)
class Anchor:
    """A head hash something vouches for: a checkpoint (signature checked) or the head row."""

    seq: int
    head_hash: str
    source: str  # "signed checkpoint" or "chain head"
    signature_valid: bool = True


@dataclass
class ChainWalk:
    """Checks entries fed in seq order, stopping at the first failure.

    `prev_hash` is the hash the first entry must link to (None: not checkable, the range
    starts after a missing entry). `anchors` are the checkpoints (with whether their
    signature verified) and the chain head record, by seq.
    """

    start_seq: int
    end_seq: int
    prev_hash: str | None
    anchors: Mapping[int, Sequence[Anchor]]
    entries_checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    failure: ChainFailure | None = None
    _expected: int = field(init=False)

    def __post_init__(self) -> None:
        self._expected = self.start_seq

    def feed(self, entry: AuditEntry) -> bool:
        """Checks one entry; False once a failure was found (stop feeding)."""
        if self.failure is not None:
            return False
        self.entries_checked += 1
        if entry.seq > self._expected:
            return self._fail(
                FailureKind.SEQ_GAP,
                self._expected,
                f"entries {self._expected}..{entry.seq - 1} are missing",
            )
        if entry.seq < self._expected:
            return self._fail(
                FailureKind.PREV_HASH_MISMATCH,
                entry.seq,
                f"seq {entry.seq} appears twice: the chain forked",
                entry.id,
            )
        if entry.computed_hash() != entry.entry_hash:
            return self._fail(
                FailureKind.ENTRY_HASH_MISMATCH,
                entry.seq,
                f"entry {entry.seq} does not match its hash: its content was changed",
                entry.id,
            )
        if self.prev_hash is not None and entry.prev_hash != self.prev_hash:
            return self._fail(
                FailureKind.PREV_HASH_MISMATCH,
                entry.seq,
                f"entry {entry.seq} does not link to the hash of entry {entry.seq - 1}",
                entry.id,
            )
        for anchor in self.anchors.get(entry.seq, ()):
            if not anchor.signature_valid:
                return self._fail(
                    FailureKind.CHECKPOINT_SIGNATURE_INVALID,
                    entry.seq,
                    f"the checkpoint at seq {entry.seq} has an invalid signature",
                    entry.id,
                )
            if anchor.head_hash != entry.entry_hash:
                return self._fail(
                    FailureKind.HEAD_HASH_MISMATCH,
                    entry.seq,
                    f"entry {entry.seq} differs from the {anchor.source} at its seq:"
                    " history was rewritten",
                    entry.id,
                )
        self.prev_hash = entry.entry_hash
        self.head_seq, self.head_hash = entry.seq, entry.entry_hash
        self._expected = entry.seq + 1
        return True

    def finish(self) -> ChainReport:
        """The report, once every entry of the range was fed (or a failure stopped it)."""
        if self.failure is None:
            self._check_end()
        checkpoints = sum(
            1
            for seq, anchors in self.anchors.items()
            for anchor in anchors
            if anchor.source == "signed checkpoint" and self.start_seq <= seq <= self.end_seq
        )
        return ChainReport(
            entries_checked=self.entries_checked,
            head_seq=self.head_seq,
            head_hash=self.head_hash,
            checkpoints_checked=checkpoints,
            failure=self.failure,
        )

    def _check_end(self) -> None:
        missing_from = self._expected
        vouched = [
            anchor
            for seq, anchors in self.anchors.items()
            for anchor in anchors
            if missing_from <= seq <= self.end_seq
        ]
        trusted = [anchor for anchor in vouched if anchor.signature_valid]
        if trusted:
            highest = max(trusted, key=lambda anchor: anchor.seq)
            self._fail(
                FailureKind.TRUNCATED,
                missing_from,
                f"entries {missing_from}..{highest.seq} are missing, though the"
                f" {highest.source} at seq {highest.seq} vouches for them",
            )
        elif vouched:
            lowest = min(vouched, key=lambda anchor: anchor.seq)
            self._fail(
                FailureKind.CHECKPOINT_SIGNATURE_INVALID,
                lowest.seq,
                f"the checkpoint at seq {lowest.seq} has an invalid signature",
            )

    def _fail(
        self, kind: FailureKind, seq: int, message: str, audit_log_id: str | None = None
    ) -> bool:
        self.failure = ChainFailure(kind, seq, message, audit_log_id)
        return False
