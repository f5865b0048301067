"""The domain model of Handoff (see DESIGN.md, "Domain"), one module per domain.

Invariants live in the database: one prediction per (item, model version), one open review task
per (item, reason), one final outcome per item, one current holder per (project, alias), one
active training run per project. Every model is re-exported here, so ``reviewapp.models`` is
the one import path (and Django registers them all with the app).
"""

from reviewapp.models.alerts import Alert, AlertEvent, AlertReason
from reviewapp.models.api import ApiClient, DeliveryState, Webhook, WebhookDelivery
from reviewapp.models.items import Item, ItemKind, ItemOrigin, item_frame_path, item_upload_path
from reviewapp.models.monitoring import (
    AlarmStatus,
    DriftAlarm,
    DriftCheck,
    DriftSample,
    DriftStatistic,
    DriftWindow,
)
from reviewapp.models.projects import ClipSampling, Project, ReviewOrder, Stage
from reviewapp.models.review import (
    REASON_PRIORITY,
    DecidedBy,
    Decision,
    Outcome,
    ReviewReason,
    ReviewTask,
    TaskStatus,
    Verdict,
)
from reviewapp.models.rollout import (
    AutomationState,
    ClassAutomation,
    RolloutEvent,
    RolloutEventKind,
)
from reviewapp.models.training import RunState, RunTrigger, TrainingRun
from reviewapp.models.versions import Alias, AliasAssignment, ModelVersion, Prediction

__all__ = [
    "REASON_PRIORITY",
    "AlarmStatus",
    "Alert",
    "AlertEvent",
    "AlertReason",
    "Alias",
    "AliasAssignment",
    "ApiClient",
    "AutomationState",
    "ClassAutomation",
    "DecidedBy",
    "Decision",
    "DeliveryState",
    "DriftAlarm",
    "DriftCheck",
    "DriftSample",
    "DriftStatistic",
    "DriftWindow",
    "Item",
    "ItemKind",
    "ItemOrigin",
    "ModelVersion",
    "Outcome",
    "Prediction",
    "Project",
    "ReviewOrder",
    "ReviewReason",
    "ReviewTask",
    "RolloutEvent",
    "RolloutEventKind",
    "RunState",
    "RunTrigger",
    "Stage",
    "ClipSampling",
    "TaskStatus",
    "TrainingRun",
    "Verdict",
    "Webhook",
    "WebhookDelivery",
    "item_frame_path",
    "item_upload_path",
]
