"""Celery tasks: thin wrappers that take ids, re-fetch, and call a service.

Task names are explicit and stable (pinned by a test): renaming one would strand queued
messages.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task

from reviewapp import ml, services
from reviewapp.models import Item

logger = logging.getLogger(__name__)


@shared_task(name="reviewapp.predict_item", acks_late=True, reject_on_worker_lost=True)
def predict_item(item_id: int) -> str:
    """Predict one item with its project's champion, store the prediction, route it."""
    item = Item.objects.select_related("project").filter(pk=item_id).first()
    if item is None:
        logger.warning("predict_item.missing item=%s", item_id)
        return "missing"
    champion = services.champion_of(item.project)
    if champion is None:
        logger.warning("predict_item.no_champion item=%s project=%s", item_id, item.project.slug)
        return "no-champion"
    if item.predictions.filter(model_version=champion).exists():
        prediction = item.predictions.get(model_version=champion)
        services.prediction_route(prediction=prediction)
        return "already-predicted"
    with item.image.open("rb") as handle:
        image = ml.load_image(handle)
    started = time.perf_counter()
    (result,) = ml.predict_images(
        artifact_path=champion.artifact_path, sha256=champion.sha256, images=[image]
    )
    latency_ms = (time.perf_counter() - started) * 1000
    prediction, _ = services.prediction_record(
        item=item, model_version=champion, result=result, latency_ms=latency_ms
    )
    services.prediction_route(prediction=prediction)
    logger.info("predict_item.done item=%s label=%s", item_id, prediction.label)
    return "predicted"
