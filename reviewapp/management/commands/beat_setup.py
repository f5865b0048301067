"""Create or update the Celery beat entries of every periodic job (and project retrain crons)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reviewapp import beat
from reviewapp.models import Project


class Command(BaseCommand):
    help = (
        "Create or update the django-celery-beat entries: prediction sweeper, rollout check, alert "
        "escalation, training reaper, corrections trigger, drift check (editable in the admin)."
    )

    def add_arguments(self, parser):
        for group in beat.GROUPS:
            defaults = sorted({entry.seconds for entry in beat.PERIODIC if entry.group == group})
            parser.add_argument(
                f"--{group}-seconds",
                type=int,
                dest=f"{group}_seconds",
                help=f"interval of the {group} entries (default {defaults[0]})",
            )
        parser.add_argument("--project", help="slug of a project to retrain on a cron schedule")
        parser.add_argument("--cron", default="0 3 * * *", help='cron fields, default "0 3 * * *"')
        parser.add_argument("--disabled", action="store_true", help="create the cron disabled")

    def handle(self, *args, **options):
        seconds = {
            group: options[f"{group}_seconds"]
            for group in beat.GROUPS
            if options.get(f"{group}_seconds") is not None
        }
        try:
            written = beat.beat_entries_setup(seconds=seconds)
        except ValueError as exc:
            raise CommandError(str(exc))
        for entry in written:
            self.stdout.write(f"beat entry: {entry.name} -> {entry.task} (every {entry.seconds} s)")
        if options["project"]:
            project = Project.objects.filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"no project with slug {options['project']!r}")
            try:
                name = beat.beat_project_retrain_setup(
                    project=project, crontab=options["cron"], enabled=not options["disabled"]
                )
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages))
            self.stdout.write(f"beat entry: {name} ({options['cron']})")
