"""One merge of the five migrations written side by side in wave 3 (issues 17, 18 and 20)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("reviewapp", "0010_alerts"),
        ("reviewapp", "0010_batching"),
        ("reviewapp", "0010_blind"),
        ("reviewapp", "0010_earned"),
        ("reviewapp", "0010_quality"),
    ]

    operations = []
