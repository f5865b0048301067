"""manage.py seed_demo: create (or reuse) the demo project, model, users and items."""

from django.core.management.base import BaseCommand

from reviewapp.demo.seed import BASE_COUNT, STREAM_COUNT, seed_demo


class Command(BaseCommand):
    help = "Seed the digits demo project (idempotent: a second run reuses what exists)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-count", type=int, default=BASE_COUNT)
        parser.add_argument("--stream-count", type=int, default=STREAM_COUNT)
        parser.add_argument("--epochs", type=int, default=3)

    def handle(self, *args, base_count: int, stream_count: int, epochs: int, **options) -> None:
        seed_demo(
            lambda line: self.stdout.write(line),
            base_count=base_count,
            stream_count=stream_count,
            epochs=epochs,
        )
        self.stdout.write(self.style.SUCCESS("demo ready"))
