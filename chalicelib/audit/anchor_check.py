"""A session's records checked against its anchors. Pure.

The chain (``chain.verify_chain``) proves the records are linked; an anchor proves where the
chain stood when the anchor was written. Together: record ``s`` of an anchor ``(s, h)`` must
exist and have hash ``h``; since each hash covers the one before it, that pins records 0..s.
So a deleted tail (an anchor past the last record) and a rewritten suffix (a record whose
hash is not its anchor's) are found. Records after the newest anchor are pinned by nothing
yet: the report says so instead of calling them verified.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.audit.anchors import Anchor
from chalicelib.audit.chain import Problem
from chalicelib.audit.records import SessionRecord


@dataclass(frozen=True)
class AnchorReport:
    """What the anchors say about the records.

    ``anchored_through``: the newest anchored seq that the records match (-1: none);
    ``unanchored``: seqs of records after the newest anchor, pinned by nothing yet.
    """

    ok: bool
    anchors: int
    anchored_through: int
    unanchored: tuple[int, ...]
    problem: Problem | None = None


def check_anchors(
    session_id: str, records: Sequence[SessionRecord], anchors: Sequence[Anchor]
) -> AnchorReport:
    """Whether ``records`` agree with every anchor of ``session_id``; the first disagreement.

    Disagreements, in the order looked for: two anchors for one record (someone wrote that
    record twice), an anchor past the last record (the tail was deleted), a record whose hash
    is not its anchor's (the session was rewritten at or before that record).
    """
    mine = [a for a in anchors if a.session_id == session_id]
    by_seq: dict[int, set[str]] = defaultdict(set)
    for anchor in mine:
        by_seq[anchor.seq].add(anchor.hash)
    hashes = {record.seq: record.hash for record in records}
    last_seq = max(hashes) if hashes else -1
    distinct = sum(len(h) for h in by_seq.values())
    newest = max(by_seq) if by_seq else -1
    unanchored = tuple(seq for seq in sorted(hashes) if seq > newest)

    def broken(problem: Problem) -> AnchorReport:
        return AnchorReport(False, distinct, -1, unanchored, problem)

    for seq in sorted(by_seq):
        if len(by_seq[seq]) > 1:
            return broken(
                Problem(
                    seq,
                    "anchor_conflict",
                    f"record {seq} was anchored with {len(by_seq[seq])} different hashes: "
                    "it was written more than once (the table was rewritten)",
                )
            )
    if newest > last_seq:
        kept = "no records" if last_seq < 0 else f"records up to {last_seq}"
        return broken(
            Problem(
                last_seq + 1,
                "tail_deleted",
                f"record {newest} was anchored but the table has {kept}: "
                f"records {last_seq + 1} to {newest} were deleted",
            )
        )
    matched = -1
    for seq in sorted(by_seq):
        (anchored,) = by_seq[seq]
        if seq not in hashes:
            return broken(Problem(seq, "anchor_missing", f"anchored record {seq} is missing"))
        if hashes[seq] != anchored:
            after = f" (it matches its anchor up to record {matched})" if matched >= 0 else ""
            return broken(
                Problem(
                    seq,
                    "anchor_mismatch",
                    f"record {seq} does not match its anchor: the session was rewritten at or "
                    f"before record {seq}{after}",
                )
            )
        matched = seq
    return AnchorReport(True, distinct, matched, unanchored)
