"""Create the beat entries for retraining: the reaper, the corrections check, project crons."""

from django.core.management.base import BaseCommand, CommandError

from reviewapp.models import Project
from reviewapp.training import triggers as retraining


class Command(BaseCommand):
    help = "Create django-celery-beat entries for training (editable afterwards in the admin)."

    def add_arguments(self, parser):
        parser.add_argument("--project", help="slug of a project to retrain on a cron schedule")
        parser.add_argument("--cron", default="0 3 * * *", help='cron fields, default "0 3 * * *"')
        parser.add_argument("--disabled", action="store_true", help="create the cron disabled")

    def handle(self, *args, **options):
        for name in retraining.training_schedule_setup():
            self.stdout.write(f"beat entry: {name}")
        if options["project"]:
            project = Project.objects.filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"no project with slug {options['project']!r}")
            name = retraining.training_schedule_project(
                project=project, crontab=options["cron"], enabled=not options["disabled"]
            )
            self.stdout.write(f"beat entry: {name} ({options['cron']})")
