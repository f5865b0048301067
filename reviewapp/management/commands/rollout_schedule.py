"""Create the beat entry of the periodic rollout check (demotion, auto-promotion)."""

from django.core.management.base import BaseCommand

from reviewapp.rollout import services as rollout


class Command(BaseCommand):
    help = "Create the django-celery-beat entry for reviewapp.rollout_check."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=int, default=300, help="check interval, default 300")

    def handle(self, *args, **options):
        name = rollout.rollout_schedule_setup(check_seconds=options["seconds"])
        self.stdout.write(f"beat entry: {name} (every {options['seconds']} s)")
