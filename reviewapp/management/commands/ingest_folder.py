"""manage.py ingest_folder PATH --project P: add every image under PATH to a project."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reviewapp.intake import services
from reviewapp.models import ItemOrigin, Project

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"}


class Command(BaseCommand):
    help = "Ingest all images in a folder (recursively) into a project and queue predictions."

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
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        added = duplicates = failed = 0
        for file in files:
            try:
                _, created = services.item_ingest(
                    project=target,
                    data=file.read_bytes(),
                    origin=ItemOrigin.FOLDER,
                    original_filename=file.name,
                    source={"path": str(file)},
                )
            except ValidationError as exc:
                failed += 1
                self.stderr.write(f"skipped {file}: {'; '.join(exc.messages)}")
                continue
            added += int(created)
            duplicates += int(not created)
        self.stdout.write(
            f"{len(files)} files: {added} added, {duplicates} already present, {failed} refused"
        )
