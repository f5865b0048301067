"""App configuration."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_groups(sender, **kwargs) -> None:
    from reviewapp.accounts import groups_ensure

    groups_ensure()


class ReviewappConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reviewapp"
    verbose_name = "Handoff review"

    def ready(self) -> None:
        post_migrate.connect(_ensure_groups, sender=self)
