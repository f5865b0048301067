"""manage.py ingest_folder PATH --project P: add every image and clip under PATH to a project."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from reviewapp.intake import bulk
from reviewapp.models import ItemOrigin, Project

IMAGE_SUFFIXES = {
    ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif",
    ".mp4", ".webm",
}  # fmt: skip


class Command(BaseCommand):
    help = (
        "Ingest the images (PNG, JPEG, WEBP, GIF, BMP, TIFF, HEIC) and clips (MP4, WebM, GIF) "
        "under a folder, a chunk per transaction, and queue their predictions."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument(
            "--chunk", type=int, default=200, help="files stored per transaction (default 200)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, path: Path, project: str, chunk: int, **options) -> None:
        target = Project.objects.filter(slug=project).first()
        if target is None:
            known = ", ".join(Project.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"unknown project {project!r} (known: {known})")
        if not path.is_dir():
            raise CommandError(f"{path} is not a folder")
        if chunk < 1:
            raise CommandError("--chunk must be at least 1")
        paths = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files = (
            bulk.IngestFile(name=file.name, read=file.read_bytes, source={"path": str(file)})
            for file in paths
        )
        added = duplicates = failed = 0
        # The bar (rate and ETA) goes to stderr, so stdout keeps only the summary line.
        with tqdm(
            total=len(paths),
            unit="file",
            desc="ingest",
            file=self.stderr,
            disable=options["no_progress"],
            mininterval=0.5,
        ) as bar:
            results = bulk.files_ingest(
                project=target, origin=ItemOrigin.FOLDER, files=files, chunk_size=chunk
            )
            for result in results:
                bar.update(1)
                if result.refusal is not None:
                    failed += 1
                    bar.write(
                        f"skipped {result.file.source['path']}: {result.refusal}", file=self.stderr
                    )
                    continue
                added += int(result.created)
                duplicates += int(not result.created)
        self.stdout.write(
            f"{len(paths)} files: {added} added, {duplicates} already present, {failed} refused"
        )
