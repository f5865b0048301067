"""Stream held-out real digits into a project, with a domain shift switched on after N items."""

from django.core.management.base import BaseCommand, CommandError

from reviewapp.demo import stream as simulation
from reviewapp.models import Project


class Command(BaseCommand):
    help = (
        "Ingest held-out scikit-learn digits through the normal ingest path (the worker predicts "
        "them); from item --after on, each item is shifted with probability --rate."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--shift", required=True, choices=simulation.SHIFTS)
        parser.add_argument("--after", type=int, default=200, help="unshifted items first")
        parser.add_argument(
            "--rate", type=float, default=1.0, help="share of items shifted after onset (0-1)"
        )
        parser.add_argument("--count", type=int, default=600, help="items in all")
        parser.add_argument("--seed", type=int, default=0, help="image order and shift draws")
        parser.add_argument("--tag", default="", help="client-key prefix (default: the seed)")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {options['project']!r}")
        try:
            report = simulation.stream_simulate(
                project=project,
                shift=options["shift"],
                after=options["after"],
                rate=options["rate"],
                count=options["count"],
                seed=options["seed"],
                tag=options["tag"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"streamed {report.created} new items into {project.slug} "
            f"({sum(report.shifted)} shifted by {options['shift']}; "
            f"{report.reused} re-used held-out images under distinct keys)"
        )
