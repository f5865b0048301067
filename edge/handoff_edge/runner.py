"""The device loop: predict locally, decide locally, send people only what they must see.

Automatic decisions leave the device as a few numbers (key, content sha256, label, confidence,
OOD score, model sha256), never as images; the server re-checks each with its own router and
answers "review" when it would not automate it (a kill switch flipped since the export, a new
champion): only then does the image leave the device.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from handoff_edge.bundle import Bundle
from handoff_edge.client import ServerClient
from handoff_edge.decide import route_decide
from handoff_edge.predict import EdgePrediction, EdgePredictor

logger = logging.getLogger(__name__)

REPORT_BATCH = 50


@dataclass
class EdgeDecision:
    """What the device did with one image."""

    image: str
    key: str
    label: str
    confidence: float
    ood_score: float
    is_ood: bool
    action: str
    reason: str
    audit_probability: float | None
    sent_image: bool = False
    server: str = ""

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)


def _report_entry(*, data: bytes, key: str, prediction: EdgePrediction, bundle: Bundle) -> dict:
    with Image.open(io.BytesIO(data)) as header:
        fmt, (width, height) = header.format or "PNG", header.size
    return {
        "key": key,
        "sha256": hashlib.sha256(data).hexdigest(),
        "width": width,
        "height": height,
        "image_format": fmt,
        "model_sha256": bundle.model_sha256,
        "label": prediction.label,
        "confidence": prediction.confidence,
        "probabilities": prediction.probabilities,
        "ood_score": prediction.ood_score,
        "is_ood": prediction.is_ood,
        "image_stats": prediction.image_stats,
    }


def _send(client: ServerClient, decision: EdgeDecision, data: bytes, bundle: Bundle) -> None:
    source = {"edge": {"reason": decision.reason, "model_sha256": bundle.model_sha256}}
    answer = client.item_send(
        data=data, filename=Path(decision.image).name, key=decision.key, source=source
    )
    decision.sent_image = True
    decision.server = str(answer.get("status", "sent"))


def images_process(
    *,
    bundle: Bundle,
    predictor: EdgePredictor,
    paths: Sequence[str | Path],
    client: ServerClient | None = None,
    keys: Sequence[str] | None = None,
) -> list[EdgeDecision]:
    """Predict and decide every image; with a client, report and send what the policy says."""
    blobs = [Path(p).read_bytes() for p in paths]
    keys = list(keys) if keys else [hashlib.sha256(b).hexdigest() for b in blobs]
    predictions = predictor.predict(blobs)
    decisions, reports = [], []
    for path, key, data, prediction in zip(paths, keys, blobs, predictions, strict=True):
        route = route_decide(prediction=prediction, policy=bundle.policy, key=key)
        decision = EdgeDecision(
            image=str(path),
            key=key,
            label=prediction.label,
            confidence=prediction.confidence,
            ood_score=prediction.ood_score,
            is_ood=prediction.is_ood,
            action=route.action,
            reason=route.reason,
            audit_probability=route.audit_probability,
        )
        decisions.append(decision)
        if client is None:
            continue
        if route.auto_accept:
            entry = _report_entry(data=data, key=key, prediction=prediction, bundle=bundle)
            reports.append((decision, data, entry))
        else:
            _send(client, decision, data, bundle)
    for start in range(0, len(reports), REPORT_BATCH):
        chunk = reports[start : start + REPORT_BATCH]
        results = client.decisions_report(decisions=[entry for _, _, entry in chunk])
        for (decision, data, _), result in zip(chunk, results, strict=True):
            decision.server = result["status"]
            if result["status"] == "review":  # the server would not automate it: people see it
                decision.reason = f"server: {result.get('reason', '')}"
                _send(client, decision, data, bundle)
    logger.info(
        "edge.processed n=%d auto=%d sent=%d",
        len(decisions),
        sum(d.action == "auto_accept" and not d.sent_image for d in decisions),
        sum(d.sent_image for d in decisions),
    )
    return decisions
