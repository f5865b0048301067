"""Item.prediction_due_at: the item is its own outbox entry until its prediction has run."""

from django.db import migrations, models
from django.db.models import Q


def _mark_waiting_items_due(apps, schema_editor):
    """Items stored before this migration that still wait for a prediction become due now."""
    Item = apps.get_model("reviewapp", "Item")
    from django.utils import timezone

    Item.objects.exclude(origin="base").filter(
        predictions__isnull=True, outcome__isnull=True
    ).update(prediction_due_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [
        ("reviewapp", "0006_monitoring"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="prediction_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="item",
            index=models.Index(
                condition=Q(prediction_due_at__isnull=False),
                fields=["prediction_due_at"],
                name="item_prediction_due",
            ),
        ),
        migrations.RunPython(_mark_waiting_items_due, migrations.RunPython.noop),
    ]
