"""The Celery application; configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("handoff")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Readiness for healthchecks: a heartbeat file while consuming (see config/worker_health.py).
from config.worker_health import HeartbeatFile  # noqa: E402

app.steps["consumer"].add(HeartbeatFile)
