"""The local decision: the server's router (``reviewapp/rollout/routing.py``) for one model.

The edge runs only the champion it was exported from, so there is no challenger branch. The
order of the rules and the sticky buckets (sha256 of "purpose:project id:item key") are the
server's; tests/edge checks the two agree item by item, and the server re-checks every automatic
decision the edge reports with its own router, so this copy can never automate more than the
server's policy allows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from handoff_edge.predict import EdgePrediction

AUTO_ACCEPT = "auto_accept"
REVIEW = "review"
ALERT = "alert"
AUTOMATING_STAGES = ("partial", "automated")


@dataclass(frozen=True)
class EdgeRoute:
    """What happens to an item: auto_accept (decided here), review or alert (sent to people)."""

    action: str
    reason: str = ""
    audit_probability: float | None = None

    @property
    def auto_accept(self) -> bool:
        """True when the device decides the item itself."""
        return self.action == AUTO_ACCEPT


def bucket_of(*, project_id: int, key: str, salt: str) -> float:
    """The server's sticky draw in [0, 1) for (purpose, project, item key)."""
    digest = hashlib.sha256(f"{salt}:{project_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _threshold_for(policy: dict, label: str) -> float:
    return float((policy.get("class_thresholds") or {}).get(label, policy["confidence_threshold"]))


def _in_domain(policy: dict, prediction: EdgePrediction) -> bool:
    if prediction.is_ood:
        return False
    limit = policy.get("ood_threshold")
    return limit is None or prediction.ood_score <= limit


def route_decide(*, prediction: EdgePrediction, policy: dict, key: str) -> EdgeRoute:
    """Decide one item as the server would: only confident in-domain items may stay here."""
    project_id = int(policy["project_id"])
    stage = policy["stage"]
    if prediction.label in set(policy.get("priority_labels") or []):
        return EdgeRoute(ALERT, "priority")
    if policy.get("kill_switch") or stage == "shadow":
        return EdgeRoute(REVIEW, "shadow")
    if stage not in AUTOMATING_STAGES:
        return EdgeRoute(REVIEW, "supervised")
    if not _in_domain(policy, prediction):
        return EdgeRoute(REVIEW, "out_of_domain")
    if prediction.confidence < _threshold_for(policy, prediction.label):
        return EdgeRoute(REVIEW, "low_confidence")
    traffic = bucket_of(project_id=project_id, key=key, salt="traffic")
    if stage == "partial" and traffic >= float(policy["traffic_share"]):
        return EdgeRoute(REVIEW, "supervised")
    audit_rate = float(policy["audit_rate"])
    if bucket_of(project_id=project_id, key=key, salt="audit") < audit_rate:
        return EdgeRoute(REVIEW, "audit", audit_probability=audit_rate)
    return EdgeRoute(AUTO_ACCEPT, "", audit_probability=audit_rate)
