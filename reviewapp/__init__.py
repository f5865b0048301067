"""Handoff's Django app: models, services, routing, queues, tasks, pages."""
