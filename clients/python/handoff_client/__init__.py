"""A Python client for Handoff's REST API: upload, wait for decisions, follow outcomes, export."""

from handoff_client.client import Client
from handoff_client.errors import (
    AuthError,
    Conflict,
    DecisionTimeout,
    HandoffConnectionError,
    HandoffError,
    InvalidSignature,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ValidationFailed,
)
from handoff_client.feed import OutcomeFeed
from handoff_client.models import FeedOutcome, FolderExport, Item, Outcome, Project, UploadResult
from handoff_client.transport import RetryPolicy
from handoff_client.uploads import Upload, content_key
from handoff_client.webhooks import sign, verify_signature, webhook_event

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "Client",
    "Conflict",
    "DecisionTimeout",
    "FeedOutcome",
    "FolderExport",
    "HandoffConnectionError",
    "HandoffError",
    "InvalidSignature",
    "Item",
    "NotFound",
    "Outcome",
    "OutcomeFeed",
    "PayloadTooLarge",
    "Project",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "Upload",
    "UploadResult",
    "ValidationFailed",
    "content_key",
    "sign",
    "verify_signature",
    "webhook_event",
]
