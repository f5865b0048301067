"""Micro-batched prediction (issue 17): claim due items, one forward per model, bulk writes.

A prediction task claims a batch of due items (reviewapp/intake/claims.py: up to
HANDOFF_PREDICT_BATCH items, waiting at most HANDOFF_PREDICT_BATCH_WAIT_MS to fill it), decodes
their images on a thread pool, runs one forward per model version (the champion, and the
challenger the same way), then writes the predictions, drift samples, review tasks and model
decisions with bulk inserts in one transaction, and takes the items out of the outbox.

Redelivery writes nothing twice: predictions already stored are not predicted again, a bulk
insert that meets a row a concurrent worker wrote first rolls back to its savepoint and the
per-item primitives (reviewapp/intake/prediction_service.py) settle each row by its constraint.
Drift checks are sent when a new champion prediction's id is a multiple of
HANDOFF_DRIFT_CHECK_EVERY: no COUNT(*) per prediction, one check per that many predictions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction

from reviewapp import jobs, ml
from reviewapp.fastpaths import bulk_copy
from reviewapp.intake import claims, decoding, prediction_service
from reviewapp.models import (
    Item,
    ItemKind,
    ModelVersion,
    Outcome,
    Prediction,
    Project,
    ReviewTask,
    TaskStatus,
)
from reviewapp.review import alerts, gold, ordering
from reviewapp.rollout import policy as rollout_policy
from reviewapp.rollout import versions

logger = logging.getLogger(__name__)


@dataclass
class BatchReport:
    """What one batch did: items predicted, found predicted already, left due, or missing."""

    predicted: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)  # no champion, or unreadable: still due
    missing: list[int] = field(default_factory=list)
    # The routes this batch wrote in its bulk inserts, by item: the model's decisions and the
    # review tasks opened (a `wait` request answers from them without reading them back).
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    tasks: dict[int, ReviewTask] = field(default_factory=dict)
    # Seconds spent reading and predicting (decode and forwards) and writing (one transaction).
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.predicted) + len(self.already) + len(self.waiting)

    def status_of(self, item_id: int) -> str:
        """The per-item answer the prediction task always gave."""
        if item_id in self.predicted:
            return "predicted"
        if item_id in self.already:
            return "already-predicted"
        if item_id in self.missing:
            return "missing"
        if item_id in self.waiting:
            return "no-champion"
        return "claimed-elsewhere"  # another worker's lease holds it


def _forward(
    *, version: ModelVersion, items: list[Item], images: dict[int, list]
) -> list[Prediction]:
    """One forward for all items' images with one model version: unsaved Prediction rows."""
    flat = [image for item in items for image in images[item.pk]]
    started = time.perf_counter()
    results = ml.predict_images(
        artifact_path=version.artifact_path, sha256=version.sha256, images=flat
    )
    latency_ms = (time.perf_counter() - started) * 1000
    rows, offset = [], 0
    for item in items:
        count = len(images[item.pk])
        own, offset = results[offset : offset + count], offset + count
        frames: list[dict] = []
        if item.kind == ItemKind.CLIP:
            times = [frame["time"] for frame in item.clip["frames"]]
            frames = ml.clip_frame_summaries(own, times)
            own = [ml.clip_aggregate(own, priority_labels=item.project.priority_labels)]
        rows.append(
            prediction_service.prediction_build(
                item=item,
                model_version=version,
                result=own[0],
                latency_ms=latency_ms,
                frames=frames,
            )
        )
    return rows


def _predictions_store(
    rows: list[Prediction], *, savepoint: bool = True
) -> tuple[list[Prediction], list[Prediction]]:
    """Insert new predictions and their drift samples in bulk; returns (stored, inserted here).

    A row a concurrent worker stored first breaks the bulk insert: that batch is stored one row
    at a time instead, each keeping the first stored prediction of its (item, version). Without
    a ``savepoint`` there is nothing to fall back to: the error fails the whole batch.
    """
    if not rows:
        return [], []
    try:
        with transaction.atomic(savepoint=savepoint):
            bulk_copy.copy_insert(rows)
            samples = [s for s in map(prediction_service.drift_sample_build, rows) if s is not None]
            bulk_copy.copy_insert(samples)
        return rows, rows
    except IntegrityError:
        if not savepoint:
            raise
        logger.info("predict_batch.concurrent_insert rows=%s", len(rows))
    stored, inserted = [], []
    for row in rows:
        prediction, created = prediction_service.prediction_record(
            item=row.item,
            model_version=row.model_version,
            result=row.result,
            latency_ms=row.latency_ms,
            frames=row.frames,
        )
        stored.append(prediction)
        if created:
            inserted.append(prediction)
    return stored, inserted


def _stored_predictions(
    *, version: ModelVersion, items: list[Item], fresh: bool
) -> dict[int, Prediction]:
    """Each item's prediction by ``version`` stored already (a redelivery reuses it).

    ``fresh`` items have no stored prediction to look for (see ``items_predict_held``).
    """
    if fresh:
        return {}
    stored = Prediction.objects.filter(model_version=version, item__in=items)
    return {p.item_id: p for p in stored.select_related("model_version")}


def _forward_missing(
    *, version: ModelVersion, items: list[Item], done: dict[int, Prediction], images: dict
) -> list[Prediction]:
    """New prediction rows by ``version`` for the items it has not predicted (and readable)."""
    todo = [item for item in items if item.pk not in done and item.pk in images]
    return _forward(version=version, items=todo, images=images) if todo else []


def _settled(item_ids: list[int]) -> set[int]:
    """The items decided already, or waiting for a human (a redelivery routes them no more)."""
    settled = set(Outcome.objects.filter(item_id__in=item_ids).values_list("item_id", flat=True))
    open_tasks = ReviewTask.objects.filter(
        item_id__in=item_ids, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
    )
    return settled | set(open_tasks.values_list("item_id", flat=True))


def _routes_write(
    pairs: list[tuple[Prediction, Prediction | None]], report: BatchReport, *, fresh: bool
) -> None:
    """Route each champion prediction; open review tasks in one bulk insert.

    Items decided already, or waiting for a human, are left as they are (a redelivery); ``fresh``
    items cannot be either (see ``items_predict_held``): their inserts take no savepoint, and a
    conflict fails the batch. The rows the bulk inserts wrote go into ``report``.
    """
    settled = set() if fresh else _settled([prediction.item_id for prediction, _ in pairs])
    policies: dict[int, rollout_policy.Policy] = {}
    tasks, routed, auto = [], [], []
    for prediction, challenger in pairs:
        item = prediction.item
        if item.pk in settled:
            continue
        alerts.alert_raise_for(prediction=prediction)  # idempotent: one alert per item
        policy = policies.get(item.project_id)
        if policy is None:
            policy = policies[item.project_id] = rollout_policy.Policy.from_project(item.project)
        decision, acting = prediction_service.route_decide(
            prediction=prediction, challenger_prediction=challenger, policy=policy
        )
        if decision.auto_accept:
            auto.append((acting, decision.audit_probability))
            continue
        tasks.append(
            prediction_service.review_task_build(item=item, decision=decision, acting=acting)
        )
        routed.append((prediction, challenger))
    decided = prediction_service.outcomes_auto_accept(auto, savepoint=not fresh)
    report.outcomes.update({outcome.item_id: outcome for outcome in decided})
    if not tasks:
        return
    ordering.tasks_score(tasks)  # one comparison per batch (k-center greedy's distance)
    try:
        with transaction.atomic(savepoint=not fresh):
            bulk_copy.copy_insert(tasks)
    except IntegrityError:  # a concurrent worker opened one first: settle them one by one
        if fresh:
            raise
        for prediction, challenger in routed:
            prediction_service.prediction_route(
                prediction=prediction, challenger_prediction=challenger
            )
        return
    report.tasks.update({task.item_id: task for task in tasks})
    for task in tasks:
        gold.gold_task_mix_maybe(task=task)  # blind gold items at the project's rate


def _drift_checks_send(new: list[Prediction]) -> None:
    """A drift check for each project whose new champion prediction ids cross a multiple."""
    every = settings.HANDOFF_DRIFT_CHECK_EVERY
    if every <= 0:
        return
    projects = {p.item.project_id for p in new if p.pk % every == 0}
    for project_id in sorted(projects):
        jobs.job_send_on_commit(jobs.DRIFT_CHECK, project_id)


@dataclass
class _Planned:
    """One project's part of a batch, predicted and not yet stored."""

    done: dict[int, Prediction]  # champion predictions stored before this batch
    rows: list[Prediction]  # new champion predictions
    challenger_done: dict[int, Prediction] = field(default_factory=dict)
    challenger_rows: list[Prediction] = field(default_factory=list)


def _project_plan(*, project: Project, items: list[Item], fresh: bool = False) -> _Planned | None:
    """Predict one project's items with its champion (and challenger), outside any transaction.

    The items are decoded and predicted part by part (``decoding.parts``), so a batch of large
    photos never holds more than the decode budget of pixels at once. None when the project has
    no champion yet.
    """
    champion, challenger = versions.serving_versions(project)
    if champion is None:
        logger.warning("predict_batch.no_champion project=%s items=%s", project.slug, len(items))
        return None
    planned = _Planned(
        done=_stored_predictions(version=champion, items=items, fresh=fresh), rows=[]
    )
    if challenger is not None:
        planned.challenger_done = _stored_predictions(version=challenger, items=items, fresh=fresh)
    # Only items a serving version has not predicted yet are read and decoded.
    wanted = [
        item
        for item in items
        if item.pk not in planned.done
        or (challenger is not None and item.pk not in planned.challenger_done)
    ]
    for part in decoding.parts(wanted):
        images = decoding.images_load_all(part)
        planned.rows += _forward_missing(
            version=champion, items=part, done=planned.done, images=images
        )
        if challenger is None:
            continue
        try:
            planned.challenger_rows += _forward_missing(
                version=challenger, items=part, done=planned.challenger_done, images=images
            )
        except ml.ArtifactError:
            # A broken challenger must never stop the champion from acting.
            logger.exception("predict_batch.challenger_failed v=%s", challenger.number)
            planned.challenger_done, planned.challenger_rows, challenger = {}, [], None
    return planned


def _plans_write(
    plans: list[_Planned], items: dict[int, Item], report: BatchReport, *, fresh: bool = False
) -> None:
    """Store the batch's predictions, route them and settle the outbox: one transaction."""
    with transaction.atomic():
        pairs: list[tuple[Prediction, Prediction | None]] = []
        for plan in plans:
            stored, inserted = _predictions_store(plan.rows, savepoint=not fresh)
            challenger_rows = _predictions_store(plan.challenger_rows, savepoint=not fresh)[0]
            challengers = {**plan.challenger_done, **{p.item_id: p for p in challenger_rows}}
            _drift_checks_send(inserted)
            report.already += list(plan.done)
            report.predicted += [p.item_id for p in stored]
            for prediction in [*plan.done.values(), *stored]:
                prediction.item = items[prediction.item_id]
                pairs.append((prediction, challengers.get(prediction.item_id)))
        _routes_write(pairs, report, fresh=fresh)
        claims.items_settle(item_ids=report.predicted + report.already)


def items_predict(*, item_ids: list[int]) -> BatchReport:
    """Predict these items in one batch and route them; settle those done in the outbox.

    The caller has claimed the items (or they are out of the outbox). Items without a champion,
    or whose images could not be read, stay due: the sweeper sends them again.
    """
    report = BatchReport()
    items = {item.pk: item for item in Item.objects.filter(pk__in=item_ids).order_by("pk")}
    # One Project instance per project, not one per item (select_related builds one per row).
    projects = Project.objects.in_bulk({item.project_id for item in items.values()})
    for item in items.values():
        item.project = projects[item.project_id]
    report.missing = [pk for pk in item_ids if pk not in items]
    return _items_run(items=items, report=report, fresh=False)


def items_predict_held(*, items: list[Item]) -> BatchReport:
    """Predict and route items their caller stored just now, claimed (the API's ``wait``).

    Preconditions: each item was created by its request with its prediction lease in the same
    INSERT (``services.item_ingest(held_until=…)``), and carries its project. No worker claims
    such an item, so it has no prediction, outcome or review task yet: nothing is read back or
    looked up for it. Should the lease have lapsed and a worker raced us, the constraints settle
    it as for any batch (one prediction per item and version, one outcome, one open task).
    """
    report = BatchReport()
    by_id = {item.pk: item for item in sorted(items, key=lambda item: item.pk)}
    return _items_run(items=by_id, report=report, fresh=True)


def _items_run(*, items: dict[int, Item], report: BatchReport, fresh: bool) -> BatchReport:
    """Predict, store and route ``items`` (each with its project loaded); fill ``report``."""
    by_project: dict[int, list[Item]] = {}
    for item in items.values():
        by_project.setdefault(item.project_id, []).append(item)
    plans, started = [], time.perf_counter()
    for project_items in by_project.values():
        plan = _project_plan(project=project_items[0].project, items=project_items, fresh=fresh)
        if plan is not None:
            plans.append(plan)
    planned = time.perf_counter()
    _plans_write(plans, items, report, fresh=fresh)
    report.seconds = {"predict": planned - started, "write": time.perf_counter() - planned}
    answered = {*report.predicted, *report.already}
    report.waiting = [pk for pk in items if pk not in answered]
    if report.missing:
        logger.warning("predict_batch.missing items=%s", report.missing)
    logger.info(
        "predict_batch.done size=%s predicted=%s already=%s waiting=%s",
        report.size,
        len(report.predicted),
        len(report.already),
        len(report.waiting),
    )
    return report


def _claim_batch(*, first: int | None) -> list[int]:
    """Claim ``first`` (when given) and due items up to a batch.

    When other items were due too (a flow is on) and the batch is not full, wait at most the
    batch wait for more; a lone item is predicted at once.
    """
    size = max(1, settings.HANDOFF_PREDICT_BATCH)
    ids = claims.items_claim_named(item_ids=[first]) if first is not None else []
    ids += claims.items_claim_due(limit=size - len(ids), exclude=ids)
    deadline = time.monotonic() + settings.HANDOFF_PREDICT_BATCH_WAIT_MS / 1000
    while 1 < len(ids) < size and time.monotonic() < deadline:
        time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
        ids += claims.items_claim_due(limit=size - len(ids), exclude=ids)
    return ids


def items_predict_due(*, first: int | None = None) -> BatchReport:
    """Claim a batch of due items (``first`` among them when it is not another worker's) and
    predict it. The prediction tasks call this; returns what the batch did."""
    ids = _claim_batch(first=first)
    report = items_predict(item_ids=ids) if ids else BatchReport()
    if first is not None and first not in ids and not Item.objects.filter(pk=first).exists():
        logger.warning("predict_item.missing item=%s", first)
        report.missing.append(first)
    return report
