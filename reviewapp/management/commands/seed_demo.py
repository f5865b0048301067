"""manage.py seed_demo: create (or reuse) the demo project, model, users and items."""

from django.core.management.base import BaseCommand

from reviewapp.demo import seed_demo


class Command(BaseCommand):
    help = "Seed the digits demo project (idempotent)."

    def handle(self, *args, **options) -> None:
        seed_demo(lambda line: self.stdout.write(line))
        self.stdout.write(self.style.SUCCESS("demo ready"))
