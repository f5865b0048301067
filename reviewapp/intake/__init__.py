"""Intake: validate and store uploads, the prediction outbox, and the prediction service."""
