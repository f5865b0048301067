"""Exit 0 when this machine's Celery worker is consuming (fresh heartbeat file), else 1."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.worker_health import STALE_AFTER_BEATS, heartbeat_age


class Command(BaseCommand):
    help = "Worker readiness probe: is the heartbeat file fresh? (docker compose healthcheck)"

    def add_arguments(self, parser):
        parser.add_argument("--file", default=settings.HANDOFF_WORKER_HEARTBEAT_FILE)
        parser.add_argument(
            "--max-age",
            type=float,
            default=settings.HANDOFF_WORKER_HEARTBEAT_SECONDS * STALE_AFTER_BEATS,
            help="Seconds after which the heartbeat counts as stale.",
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        age = heartbeat_age(path)
        if age is None:
            raise CommandError(f"not ready: no heartbeat at {path} (worker down or disconnected)")
        if age > options["max_age"]:
            raise CommandError(
                f"not ready: last heartbeat {age:.0f}s ago (> {options['max_age']:.0f}s)"
            )
        self.stdout.write(f"ready: heartbeat {age:.1f}s ago")
