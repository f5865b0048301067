"""Create the beat entry of the prediction sweeper (re-sends overdue predictions)."""

from django.core.management.base import BaseCommand

from reviewapp.intake import outbox


class Command(BaseCommand):
    help = "Create the django-celery-beat entry for reviewapp.sweep_predictions."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=int, default=30, help="sweep interval, default 30")

    def handle(self, *args, **options):
        name = outbox.sweep_schedule_setup(every_seconds=options["seconds"])
        self.stdout.write(f"beat entry: {name} (every {options['seconds']} s)")
