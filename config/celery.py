"""The Celery application; configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery, signals
from django.conf import settings  # lazy: read once the worker has set Django up
from threadpoolctl import threadpool_limits

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("handoff")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Readiness for healthchecks: a heartbeat file while consuming (see config/worker_health.py).
from config.heap import long_lived_enable  # noqa: E402
from config.worker_health import HeartbeatFile  # noqa: E402
from config.worker_priority import worker_priority_lower  # noqa: E402

app.steps["consumer"].add(HeartbeatFile)


@signals.worker_init.connect
def _cores_share(sender, **_) -> None:
    """Give each prefork pool process its share of the cores (issue 17): N pool processes each
    running torch's default thread count (all cores) oversubscribe the CPU and all slow down.
    HANDOFF_PREDICT_THREADS, when set, wins."""
    if not os.environ.get("HANDOFF_PREDICT_THREADS") and isinstance(sender.concurrency, int):
        share = max(1, len(os.sched_getaffinity(0)) // max(1, sender.concurrency))
        os.environ["HANDOFF_PREDICT_THREADS"] = str(share)


@signals.worker_init.connect
def _priority_lower(sender, **_) -> None:
    """Prediction workers run below the web process's CPU priority (config/worker_priority.py),
    set in the main process before the pool forks, so every pool process inherits it."""
    worker_priority_lower(
        nice=settings.HANDOFF_PREDICT_WORKER_NICE,
        queues=sender.app.amqp.queues.consume_from.keys(),
    )


@signals.worker_process_init.connect
def _long_lived(**_) -> None:
    """Pool processes freeze what start-up loaded, and again after each model load."""
    long_lived_enable("worker process start-up")


@signals.worker_process_init.connect
def _torch_threads(**_) -> None:
    threads = int(os.environ.get("HANDOFF_PREDICT_THREADS") or 0)
    if threads > 0:
        # Deferred: torch, which only a worker's pool process needs (never the web process).
        import torch

        torch.set_num_threads(threads)
        # numpy's BLAS too (the drift projection, image statistics): its own thread pool would
        # otherwise spin on every core beside the other pool processes.
        threadpool_limits(limits=threads)
