"""Issue 20, item 4: review tasks carry their informativeness; projects choose the desk's order."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reviewapp", "0011_merge_wave3"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="review_order",
            field=models.CharField(
                choices=[
                    (
                        "informative",
                        "Most informative first (random samples stay first in, first out)",
                    ),
                    ("fifo", "First in, first out"),
                ],
                default="informative",
                help_text="Order of stage work on the desk; random calibration and audit samples "
                "keep first in, first out either way.",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="reviewtask",
            name="informativeness",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="reviewtask",
            index=models.Index(
                condition=models.Q(("status__in", ["open", "claimed"])),
                fields=["project", "-priority", "-informativeness", "created_at", "id"],
                name="task_claim_informative",
            ),
        ),
    ]
