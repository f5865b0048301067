"""Gold items (known label, blind gold tasks) and the per-project reviewer quality bar."""

from django.db import migrations, models


def _fraction_check(field: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=models.Q(**{f"{field}__gte": 0}) & models.Q(**{f"{field}__lte": 1}),
        name=f"project_{field}_0_1",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("reviewapp", "0009_video_clips"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="gold_label",
            field=models.CharField(
                blank=True, default="", help_text="The gold item's known label.", max_length=100
            ),
        ),
        migrations.AddField(
            model_name="project",
            name="gold_rate",
            field=models.FloatField(
                default=0.0,
                help_text="Share of new review tasks that bring a gold item along, blindly.",
            ),
        ),
        migrations.AddField(
            model_name="project",
            name="gold_min_accuracy",
            field=models.FloatField(
                default=0.0,
                help_text="Quality bar: a reviewer below this accuracy on gold is double-reviewed.",
            ),
        ),
        migrations.AddField(
            model_name="project",
            name="gold_min_n",
            field=models.PositiveIntegerField(
                default=10,
                help_text="Gold answers a reviewer needs before the quality bar applies.",
            ),
        ),
        migrations.AddField(
            model_name="reviewtask",
            name="gold_check",
            field=models.BooleanField(default=False),
        ),
        migrations.AddConstraint(model_name="project", constraint=_fraction_check("gold_rate")),
        migrations.AddConstraint(
            model_name="project", constraint=_fraction_check("gold_min_accuracy")
        ),
    ]
