"""App configuration."""

from pathlib import Path

from django.apps import AppConfig
from django.conf import settings
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
        from reviewapp import signals  # noqa: F401 - connects the receivers

        # kombu's filesystem transport needs its folders before the first message is sent.
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if key in options:
                Path(options[key]).mkdir(parents=True, exist_ok=True)
