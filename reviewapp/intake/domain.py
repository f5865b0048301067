"""What the item-level guard (rollout.guard) needs of one prediction: the item's image statistics
and the predicting version's domain profile, built once per process from its drift reference."""

from __future__ import annotations

import logging
import threading

from reviewapp import ml
from reviewapp.models import DriftSample, ModelVersion, Prediction
from reviewapp.rollout.guard import DomainProfile, Looks

logger = logging.getLogger(__name__)

_PROFILES: dict[str, DomainProfile | None] = {}
_LOCK = threading.Lock()


def domain_profile(version: ModelVersion) -> DomainProfile | None:
    """The version's domain profile (None when its artifact keeps no image statistics)."""
    with _LOCK:
        if version.sha256 in _PROFILES:
            return _PROFILES[version.sha256]
    try:
        reference = ml.drift_reference(artifact_path=version.artifact_path, sha256=version.sha256)
    except (ml.ArtifactError, OSError, KeyError, ValueError):
        logger.warning("guard.no_reference version=%s", version.pk, exc_info=True)
        profile = None
    else:
        if reference.image_stats:
            profile = DomainProfile.from_samples(reference.image_stats)
        elif reference.image_summary:
            profile = DomainProfile.from_summary(reference.image_summary)
        else:
            profile = None
    with _LOCK:
        _PROFILES[version.sha256] = profile
    return profile


def looks_of(prediction: Prediction) -> Looks | None:
    """The item's statistics beside the profile of the version that predicted it (or None)."""
    result = getattr(prediction, "result", None)  # the batched worker keeps it: no query
    stats = (
        result.image_stats
        if result is not None
        else DriftSample.objects.filter(prediction_id=prediction.pk)
        .values_list("image_stats", flat=True)
        .first()
    )
    if not stats:
        return None
    profile = domain_profile(prediction.model_version)
    return Looks(image_stats=stats, profile=profile) if profile else None
