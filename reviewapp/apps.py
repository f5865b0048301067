"""App configuration."""

from pathlib import Path

import pillow_heif
from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


class ReviewappConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reviewapp"
    verbose_name = "Handoff review"

    def ready(self) -> None:
        # Django loads models only after every app's module is imported, so the roles'
        # module (which needs the auth models) is imported here, as Django's docs do.
        from reviewapp.accounts.services import groups_ensure_after_migrate

        post_migrate.connect(groups_ensure_after_migrate, sender=self)

        # HEIC/HEIF uploads (issue 17): Pillow opens them once the plugin is registered,
        # here once per process (web and workers alike), never at import time.
        pillow_heif.register_heif_opener()

        # kombu's filesystem transport needs its folders before the first message is sent.
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if key in options:
                Path(options[key]).mkdir(parents=True, exist_ok=True)
