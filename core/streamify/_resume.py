"""Resume decisions: what to do with an upload, decided from plain facts. No I/O.

The engine gathers the facts (the resume state, the parts S3 lists for the open upload,
the object S3 holds when that upload is gone, the source's fingerprint, the config) and
calls :func:`decide`. When the answer depends on the source's bytes, ``decide`` answers
:class:`NeedHashes` with the byte ranges to hash; the engine hashes them and calls again
with the hashes added to the facts. Every other answer is final:

- :class:`Create`: start a new upload (nothing to resume, or the old one is gone);
- :class:`Resume`: carry on with an open upload, keeping the parts that match the source;
- :class:`AlreadyComplete`: an earlier run completed the object, then died before
  forgetting its upload; or, with nothing open, the destination already holds exactly this
  source (its size, and the multipart ETag of the source cut by the configured plan or the
  default one), unless the config says ``if_exists="overwrite"``;
- :class:`Refuse`: the source changed, the open upload holds other data, it is gone and
  the config says fail, or the destination holds another object and the config says
  ``if_exists="refuse_different"``.

:func:`decide_listed` is the same decision for a file that only someone else can read (a
browser's): no fingerprint, no resume state, only its name, its size and the parts S3
lists; the reader hashes the ranges asked for.

A listed part is kept when its ETag is the MD5 of the source range, or else when its
additional checksum matches. A part whose ETag is not the MD5 and that has no checksum
(damaged, or encrypted with SSE-KMS or SSE-C, whose ETags are no MD5) cannot be told apart,
so it is sent again, once, never trusted blindly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ._checksum import checksum_algorithm, composite_etag
from ._config import UploadConfig
from ._control import ObjectInfo, UploadedPart
from ._destination import Destination
from ._errors import DestinationExistsError, SourceChangedError, StreamifyError, UploadGoneError
from ._plan import PartPlan, candidate_plans, plan_parts
from ._source import Fingerprint
from ._state import ResumeState

__all__ = [
    "AlreadyComplete",
    "ByteRange",
    "Create",
    "Decision",
    "ListedFacts",
    "NeedHashes",
    "RangeHashes",
    "Refuse",
    "Resume",
    "ResumeFacts",
    "decide",
    "decide_listed",
    "object_plans",
]

_DEFAULT_PART_SIZE = UploadConfig().part_size

ByteRange = tuple[int, int]
"""``(offset, size)`` in the source."""

@dataclass(frozen=True, slots=True)
class RangeHashes:
    """Hashes of one byte range of the source."""

    md5: str
    """Hex MD5."""
    checksum: str | None
    """Base64 additional checksum with the algorithm :class:`NeedHashes` asked for."""


@dataclass(frozen=True, kw_only=True)
class ResumeFacts:
    source_name: str
    destination: Destination
    fingerprint: Fingerprint
    config: UploadConfig
    state: ResumeState | None = None
    upload_id: str | None = None
    """The open upload looked at: the state's, or (no state) the newest found by listing."""
    listed: Sequence[UploadedPart] | None = None
    """Its parts; ``None`` when there is no open upload (or the state's one is gone)."""
    existing: ObjectInfo | None = None
    """The object at the destination, looked up when the state's upload is gone, or when
    there is neither state nor open upload (unless ``if_exists="overwrite"``)."""
    hashes: Mapping[ByteRange, RangeHashes] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ListedFacts:
    """What is known of a file that another program reads (the browser, for the notebook's
    ``BrowserUploader``): its name and size, and the parts S3 lists for an open upload to
    its destination. The MD5s of the ranges asked for, hashed by that reader, are the only
    proof of its bytes."""

    source_name: str
    destination: Destination
    size: int
    config: UploadConfig
    upload_id: str | None = None
    """The open upload looked at: the one the reader remembered, or one found by listing."""
    listed: Sequence[UploadedPart] | None = None
    """Its parts; ``None`` when there is no open upload (or the remembered one is gone)."""
    part_size: int | None = None
    """The part size the reader remembered starting the upload with; ``None`` when the upload
    was found by listing, so its plan is read back from its parts."""
    hashes: Mapping[ByteRange, RangeHashes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NeedHashes:
    """Hash these ranges of the source (MD5, and ``checksum`` unless "none"), then ask again."""

    ranges: tuple[ByteRange, ...]
    checksum: str

    @property
    def size(self) -> int:
        return sum(size for _, size in self.ranges)


@dataclass(frozen=True, slots=True)
class Create:
    plan: PartPlan
    checksum: str
    replaces: str | None = None
    """The upload id of a previous upload that was found gone."""


@dataclass(frozen=True, slots=True)
class Resume:
    upload_id: str
    plan: PartPlan
    checksum: str
    """The additional checksum the upload was started with (the state's, not the config's)."""
    keep: Mapping[int, UploadedPart]
    """Parts S3 holds that match the source (by MD5 ETag, or by checksum)."""
    mismatched: tuple[int, ...]
    """Listed parts that do not match the source: they are sent again."""
    unverifiable: tuple[int, ...]
    """Listed parts whose ETag is not the MD5 and that carry no checksum: sent again, once."""
    found_by: Literal["state", "listing"]
    save_state: bool
    """Whether the state must be (re)written: found by listing, or the file was touched."""
    etags_are_md5s: bool
    """Whether every kept part's ETag is its MD5 (so the object's ETag can be foretold)."""


@dataclass(frozen=True, slots=True)
class AlreadyComplete:
    upload_id: str | None
    """The upload that completed it; ``None`` when the object was simply found there."""
    plan: PartPlan
    info: ObjectInfo


@dataclass(frozen=True, slots=True)
class Refuse:
    error: StreamifyError


Decision = NeedHashes | Create | Resume | AlreadyComplete | Refuse


def decide(facts: ResumeFacts) -> Decision:
    """What to do with the upload the facts describe (see the module docstring)."""
    size = facts.fingerprint.size
    state = facts.state
    if state is not None:
        recorded = state.fingerprint
        if recorded.size != size or recorded.edges_sha256 != facts.fingerprint.edges_sha256:
            return Refuse(SourceChangedError(
                f"{facts.source_name} is not the file that upload {state.upload_id} to "
                f"{facts.destination} was started with (it changed since); the old upload "
                f"was left open: restore the file and rerun to finish it, or run "
                f"`streamify abort {facts.destination}` to start over"))
        plan = PartPlan(size=size, part_size=state.part_size)
        if facts.listed is None:
            return _gone(facts, state, plan)
        # Only a touched or copied file (same size and edges, new time) gets here with
        # another fingerprint: every part S3 holds must then match it exactly.
        touched = recorded != facts.fingerprint
        return _check(facts, state.upload_id, [plan], state.checksum, strict=touched,
                      found_by="state", touched=touched)
    if facts.upload_id is not None and facts.listed is not None:
        plans = candidate_plans(size, [(p.number, p.size) for p in facts.listed],
                                facts.config.part_size)
        return _check(facts, facts.upload_id, plans, _listed_checksum(facts), strict=True,
                      found_by="listing")
    return _existing(facts)


def decide_listed(facts: ListedFacts) -> NeedHashes | Create | Resume | Refuse:
    """What to do with the file :class:`ListedFacts` describe: go on with the open upload,
    keeping only the parts whose MD5 is the file's (a part whose ETag is no MD5 is sent
    again, never kept unchecked), or start a new one. An upload found by listing must hold
    this file's bytes in every part, or it is refused: it may be another file's."""
    config = facts.config
    if facts.upload_id is None or facts.listed is None:
        return Create(plan_parts(facts.size, config.part_size), "none",
                      replaces=facts.upload_id)
    if facts.part_size is not None:
        return _check(facts, facts.upload_id,
                      [PartPlan(size=facts.size, part_size=facts.part_size)], "none",
                      strict=False, found_by="state")
    plans = candidate_plans(facts.size, [(p.number, p.size) for p in facts.listed],
                            config.part_size)
    return _check(facts, facts.upload_id, plans, "none", strict=True, found_by="listing")


def _existing(facts: ResumeFacts) -> Decision:
    """Nothing open: leave an object that already is the source, else upload (or refuse)."""
    size, config, info = facts.fingerprint.size, facts.config, facts.existing
    create = Create(plan_parts(size, config.part_size), config.checksum)
    if info is None or config.if_exists == "overwrite":
        return create
    for plan in object_plans(info, size, config.part_size):
        ranges = [(part.offset, part.size) for part in plan]
        missing = tuple(r for r in ranges if r not in facts.hashes)
        if missing:
            return NeedHashes(missing, "none")
        md5s = [facts.hashes[r].md5 for r in ranges]
        if info.etag in (composite_etag(md5s), "-" not in info.etag and md5s[0]):
            return AlreadyComplete(None, plan, info)
    if config.if_exists == "refuse_different":
        return Refuse(DestinationExistsError(
            f"{facts.destination} already holds a different object (size {info.size}, ETag "
            f"{info.etag}) than {facts.source_name}: overwrite it (if_exists='overwrite' or "
            "'skip_identical'), or choose another destination"))
    return create


def object_plans(info: ObjectInfo, size: int, part_size: int) -> list[PartPlan]:
    """The plans that may have made an object of ``size`` bytes with this ETag: the plan for
    ``part_size``, then the default one, keeping those with the ETag's part count (a
    plain MD5 ETag: one part). Empty when the size differs or the ETag is no MD5 (SSE-KMS,
    SSE-C), so such an object is never taken for the source."""
    md5, dash, count = info.etag.partition("-")
    if info.size != size or len(md5) != 32 or (dash and not count.isdigit()):
        return []
    parts = int(count) if dash else 1
    plans: list[PartPlan] = []
    for preferred in (part_size, _DEFAULT_PART_SIZE):
        plan = plan_parts(size, preferred)
        if plan.count == parts and plan not in plans:
            plans.append(plan)
    return plans


def _listed_checksum(facts: ResumeFacts) -> str:
    """The algorithm an upload found by listing was started with, told by its parts."""
    for part in facts.listed or ():
        if part.checksum:
            try:
                return checksum_algorithm(part.checksum)
            except ValueError:
                continue
    return facts.config.checksum


def _gone(facts: ResumeFacts, state: ResumeState, plan: PartPlan) -> Decision:
    info = facts.existing
    if (info is not None and info.size == plan.size
            and info.etag.endswith(f"-{plan.count}") and len(info.etag.split("-")[0]) == 32):
        ranges = [(part.offset, part.size) for part in plan]
        missing = tuple(r for r in ranges if r not in facts.hashes)
        if missing:
            return NeedHashes(missing, "none")
        if composite_etag(facts.hashes[r].md5 for r in ranges) == info.etag:
            return AlreadyComplete(state.upload_id, plan, info)
    if facts.config.on_upload_gone == "fail":
        return Refuse(UploadGoneError(
            f"upload {state.upload_id} to {facts.destination} was aborted or expired behind "
            "our back; rerun to start a fresh upload"))
    return Create(plan_parts(plan.size, facts.config.part_size), facts.config.checksum,
                  replaces=state.upload_id)


def _check(facts: ResumeFacts | ListedFacts, upload_id: str, plans: list[PartPlan],
           checksum: str, *, strict: bool, found_by: Literal["state", "listing"],
           touched: bool = False) -> NeedHashes | Resume | Refuse:
    """Keep the listed parts that match the source under the first plan that fits.

    ``strict``: any listed part that does not match means the upload holds other data, so
    that plan is rejected (and, with no plan left, the upload is refused rather than two
    files mixed into one object). Otherwise mismatched parts are just sent again.
    ``touched``: the file's time changed since the state was written, so it is written again.
    """
    listed = sorted(facts.listed or (), key=lambda p: p.number)
    for plan in plans:
        fits = [p for p in listed if p.number <= plan.count
                and p.size == plan.part(p.number).size]
        if strict and len(fits) != len(listed):
            continue
        ranges = {u.number: (plan.part(u.number).offset, u.size) for u in fits}
        by_checksum = checksum != "none" and any(_checksum_of(u, checksum) for u in fits)
        missing = tuple(r for r in ranges.values() if r not in facts.hashes
                        or (by_checksum and facts.hashes[r].checksum is None))
        if missing:
            return NeedHashes(missing, checksum if by_checksum else "none")
        keep: dict[int, UploadedPart] = {}
        unverifiable: list[int] = []
        for uploaded in fits:
            verdict = _verdict(uploaded, facts.hashes[ranges[uploaded.number]], checksum)
            if verdict is None:
                unverifiable.append(uploaded.number)
            elif verdict:
                keep[uploaded.number] = uploaded
        if strict and len(keep) != len(listed):
            continue
        mismatched = tuple(p.number for p in listed
                           if p.number not in keep and p.number not in unverifiable)
        return Resume(upload_id=upload_id, plan=plan, checksum=checksum, keep=keep,
                      mismatched=mismatched, unverifiable=tuple(unverifiable),
                      found_by=found_by, save_state=found_by == "listing" or touched,
                      etags_are_md5s=all(facts.hashes[ranges[n]].md5 == p.etag
                                         for n, p in keep.items()))
    return Refuse(SourceChangedError(
        f"an open upload ({upload_id}) to {facts.destination} holds data that does not match "
        f"{facts.source_name}; nothing was mixed: run `streamify abort {facts.destination}` "
        "to discard it, or upload the original file to finish it (in a bucket encrypted "
        "with SSE-KMS or SSE-C, parts are checked only by an additional checksum such as "
        "--checksum sha256)"))


def _checksum_of(uploaded: UploadedPart, algorithm: str) -> bool:
    """Whether the part carries a checksum of ``algorithm`` to check it by."""
    if not uploaded.checksum or algorithm == "none":
        return False
    try:
        return checksum_algorithm(uploaded.checksum) == algorithm
    except ValueError:
        return False


def _verdict(uploaded: UploadedPart, hashes: RangeHashes, checksum: str) -> bool | None:
    """Whether the part holds the source's bytes; ``None`` when that cannot be told: its
    ETag is not their MD5 (a damaged part, or SSE-KMS/SSE-C, whose ETags are no MD5) and it
    carries no checksum to check by."""
    if uploaded.etag == hashes.md5:
        return True
    if _checksum_of(uploaded, checksum):
        return uploaded.checksum == hashes.checksum
    return None
