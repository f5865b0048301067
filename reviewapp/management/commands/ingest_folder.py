"""manage.py ingest_folder PATH --project P: add every image and clip under PATH to a project."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reviewapp.intake import services
from reviewapp.models import ItemOrigin, Project

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".mp4", ".webm"}


class Command(BaseCommand):
    help = "Ingest the images and clips (MP4, WebM, GIF) under a folder and queue predictions."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True, help="project slug")

    def handle(self, *args, path: Path, project: str, **options) -> None:
        target = Project.objects.filter(slug=project).first()
        if target is None:
            known = ", ".join(Project.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"unknown project {project!r} (known: {known})")
        if not path.is_dir():
            raise CommandError(f"{path} is not a folder")
        paths = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files = [
            services.IngestFile(name=file.name, read=file.read_bytes, source={"path": str(file)})
            for file in paths
        ]
        added = duplicates = failed = 0
        for result in services.files_ingest(project=target, origin=ItemOrigin.FOLDER, files=files):
            if result.refusal is not None:
                failed += 1
                self.stderr.write(f"skipped {result.file.source['path']}: {result.refusal}")
                continue
            added += int(result.created)
            duplicates += int(not result.created)
        self.stdout.write(
            f"{len(paths)} files: {added} added, {duplicates} already present, {failed} refused"
        )
