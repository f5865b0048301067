"""Report (and with --repair, remove) media leftovers: temp files, files without rows.

Rows whose file is missing are reported and make the command fail; they cannot be repaired
from here (the content is gone), and ingest never creates them (see reviewapp/media.py).
"""

from django.core.management.base import BaseCommand, CommandError

from reviewapp.intake import media


class Command(BaseCommand):
    help = "Compare media files with Item rows; --repair deletes leftovers older than --min-age."

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="delete leftovers and orphans")
        parser.add_argument(
            "--min-age",
            type=float,
            default=3600,
            help="ignore files younger than this many seconds (uploads in flight), default 3600",
        )

    def handle(self, *args, **options):
        report = media.media_check(repair=options["repair"], min_age_seconds=options["min_age"])
        for name in report.temp_files:
            self.stdout.write(f"temp file (interrupted upload): {name}")
        for name in report.orphan_files:
            self.stdout.write(f"orphan file (no item row): {name}")
        for pk, name in report.missing_files:
            self.stdout.write(f"missing file: item {pk} points to {name}")
        verb = "removed" if options["repair"] else "found (use --repair to remove)"
        leftovers = len(report.temp_files) + len(report.orphan_files)
        missing = len(report.missing_files)
        self.stdout.write(f"{leftovers} leftover file(s) {verb}; {missing} missing")
        if report.missing_files:
            raise CommandError(f"{len(report.missing_files)} item(s) point to a missing file")
