from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reviewapp", "0009_video_clips"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="prediction_claimed_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
