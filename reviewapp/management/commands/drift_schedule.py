"""Create the beat entry of the periodic drift check of every project."""

from django.core.management.base import BaseCommand

from reviewapp.monitoring import services as monitoring


class Command(BaseCommand):
    help = "Create the django-celery-beat entry for reviewapp.drift_check_all."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=int, default=900, help="check interval, default 900")

    def handle(self, *args, **options):
        name = monitoring.drift_schedule_setup(check_seconds=options["seconds"])
        self.stdout.write(f"beat entry: {name} (every {options['seconds']} s)")
