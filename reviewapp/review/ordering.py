"""Which stage work the desk serves first: each task's informativeness (issue 20, item 4).

A task's informativeness is set once, when the prediction is routed, as margin uncertainty plus
diversity, each in [0, 1] and weighed equally:

- **margin uncertainty** 1 − (p1 − p2), the gap between the model's two most probable classes
  (margin sampling: Scheffer, Decomain & Wrobel 2001, https://doi.org/10.1007/3-540-44816-0_31;
  Settles 2009, "Active Learning Literature Survey", §3.1): near 1 where the model hesitates.
- **diversity**: the cosine distance, halved into [0, 1], from the item's projected embedding
  (``mlcore.drift.project_embeddings``, kept in its drift sample) to the nearest one among the
  project's last ``REFERENCE_SIZE`` decided review tasks by the same model version and the
  batch's earlier tasks. Decided, not merely queued: a queued item teaches the model nothing
  yet, and comparing with the queue would score a new kind of item (a camera change) high only
  until its first few look-alikes are queued. It is the quantity k-center greedy maximises
  (Sener & Savarese 2018, "Active Learning for Convolutional Neural Networks: A Core-Set
  Approach", ICLR,
  https://arxiv.org/abs/1708.00489): an item far from every centre chosen so far covers ground
  no label covers yet, and a burst of look-alikes is scored high once, not each time. It is a
  streaming, one-pass version: one query per batch, and the score is frozen when the task opens
  (not recomputed as other tasks are decided), so a queue's late near-duplicates keep their
  first score. An item without an embedding gets diversity 0 (margin alone).

Who is ordered by it: ``ORDERED_REASONS``, the stage work: supervised, low-confidence,
out-of-domain and challenger-disagreement tasks. Left unscored (informativeness null) and so in
arrival order: the blind random samples that the statistics rest on (shadow-stage calibration
reviews and random audits, ``rollout.blind.BLIND_SAMPLE_REASONS``: LTT thresholds and the audit
monitor weigh their labels by inclusion probability, which holds only if which of them get
labelled first does not depend on the model's scores), priority alerts (their deadline runs from
arrival), second reviews and adjudications (no prediction of their own). A gold task copies the
score of the task it rides along with, so it sits beside it and looks like it.

How they interleave with the project's ``review_order`` "informative" (the default): priority
first, as always; within a priority, unscored tasks first, oldest first, then the scored ones,
most informative first, ties by age (``sort_key``; the claim's SQL and ORM in ``claim``). A
random sample is therefore never held back behind a task chosen by the model's score, at the
cost that stage work of the same priority waits while random samples are queued (audits
already outrank stage work by priority; shadow and supervised tasks share priority 20 only in
the partial and automated stages). With "fifo" every task goes by priority, then age.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
from django.db.models import F

from reviewapp.models import (
    DriftSample,
    Project,
    ReviewOrder,
    ReviewReason,
    ReviewTask,
    TaskStatus,
)
from reviewapp.rollout import blind

# Stage work ordered by informativeness; every other reason keeps arrival order.
ORDERED_REASONS = frozenset(
    {
        ReviewReason.SUPERVISED,
        ReviewReason.LOW_CONFIDENCE,
        ReviewReason.OUT_OF_DOMAIN,
        ReviewReason.DISAGREEMENT,
    }
)
assert not ORDERED_REASONS & set(blind.BLIND_SAMPLE_REASONS)  # noqa: S101 - the module's premise
REFERENCE_SIZE = 256  # recent tasks' embeddings a batch is compared with


def margin_uncertainty(probabilities: Mapping[str, float]) -> float:
    """1 − (p1 − p2): 1 when the two most probable classes tie, 0 when one class has it all."""
    top = sorted((float(p) for p in probabilities.values()), reverse=True)[:2]
    p1, p2 = (top + [0.0, 0.0])[:2]
    return float(min(1.0, max(0.0, 1.0 - (p1 - p2))))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.clip(norms, 1e-12, None)


def diversity_scores(
    embeddings: Sequence[Sequence[float] | None], reference: Sequence[Sequence[float]] = ()
) -> list[float | None]:
    """Each embedding's halved cosine distance to the nearest of ``reference`` and the earlier
    embeddings of the batch (k-center greedy's distance, in one pass); 1 when there is none yet.
    None where an embedding is missing or of another size than the batch's first."""
    dim = next((len(e) for e in embeddings if e), None)
    if dim is None:
        return [None] * len(embeddings)
    centres = [np.asarray(r, dtype=np.float64) for r in reference if r and len(r) == dim]
    known = _unit_rows(np.stack(centres)) if centres else np.zeros((0, dim))
    out: list[float | None] = []
    for embedding in embeddings:
        if not embedding or len(embedding) != dim:
            out.append(None)
            continue
        row = _unit_rows(np.asarray([embedding], dtype=np.float64))
        if len(known):
            nearest = float(np.max(known @ row[0]))
            out.append(float(min(1.0, max(0.0, (1.0 - nearest) / 2))))
        else:
            out.append(1.0)
        known = np.vstack([known, row])
    return out


def informativeness(*, margin: float, diversity: float | None) -> float:
    """The score the desk orders stage work by: margin uncertainty plus diversity."""
    return float(margin + (diversity or 0.0))


def is_ordered(reason: str) -> bool:
    """Whether a task of this reason is ordered by informativeness (else: by arrival)."""
    return reason in ORDERED_REASONS


def sort_key(
    *, priority: int, informativeness: float | None, created_at: datetime | float, pk: int
) -> tuple:
    """The desk's order with review_order "informative", as one sortable key (the claim's SQL
    and ORM order by the same columns): priority, unscored first, most informative, oldest."""
    scored = informativeness is not None
    return (-priority, scored, -(informativeness or 0.0), created_at, pk)


def claim_order(project: Project) -> tuple:
    """The ORM's order_by() for the project's claim (reviewapp.review.claim.claimable)."""
    if project.review_order == ReviewOrder.FIFO:
        return ("-priority", "created_at", "pk")
    # Nulls first, as PostgreSQL's DESC and the task_claim_informative index put them.
    return ("-priority", F("informativeness").desc(nulls_first=True), "created_at", "pk")


def _embedding_of(task: ReviewTask) -> list[float] | None:
    result = getattr(task.prediction, "result", None)
    return list(result.embedding) if result is not None and result.embedding else None


def _references(project_id: int, version_id: int) -> list[list[float]]:
    """The embeddings of the project's most recently decided review tasks by this version."""
    rows = (
        ReviewTask.objects.filter(
            project_id=project_id,
            status=TaskStatus.DONE,
            prediction__model_version_id=version_id,
        )
        .order_by("-pk")
        .values_list("prediction__drift_sample__embedding", flat=True)[:REFERENCE_SIZE]
    )
    return [list(row) for row in rows if row]


def tasks_score(tasks: Sequence[ReviewTask]) -> None:
    """Set the informativeness of new (unsaved) tasks of one routing batch, in place.

    One query for the embeddings of stored predictions (a redelivery's), one per (project,
    model version) for the recent tasks' embeddings the batch is compared with.
    """
    ordered = [t for t in tasks if t.prediction is not None and is_ordered(t.reason)]
    embeddings = {id(t): _embedding_of(t) for t in ordered}
    missing = {t.prediction.pk: id(t) for t in ordered if embeddings[id(t)] is None}
    missing.pop(None, None)
    if missing:
        stored = DriftSample.objects.filter(prediction_id__in=list(missing)).values_list(
            "prediction_id", "embedding"
        )
        embeddings.update({missing[pk]: list(e) for pk, e in stored if e})
    groups: dict[tuple[int, int], list[ReviewTask]] = {}
    for task in ordered:
        key = (task.project_id, task.prediction.model_version_id)
        groups.setdefault(key, []).append(task)
    for (project_id, version_id), group in groups.items():
        diversities = diversity_scores(
            [embeddings[id(t)] for t in group],
            _references(project_id, version_id),
        )
        for task, diversity in zip(group, diversities, strict=True):
            task.informativeness = informativeness(
                margin=margin_uncertainty(task.prediction.probabilities or {}),
                diversity=diversity,
            )
