"""The demo seed: real digits, a trained champion, users, queued items — and idempotent."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from reviewapp.models import Item, ModelVersion, Project, TrainingRun
from reviewapp.rollout import versions

pytestmark = pytest.mark.django_db


def test_seed_twice_reuses_everything(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    settings.HANDOFF_DEMO_ADMIN_PASSWORD = ""
    settings.HANDOFF_DEMO_REVIEWER_PASSWORD = "reviewer-password-from-env"
    options = {"base_count": 150, "stream_count": 12, "epochs": 1}
    call_command("seed_demo", **options)
    first = capsys.readouterr().out
    project = Project.objects.get(slug="digits")
    champion = versions.champion_of(project)
    assert champion is not None and champion.number == 1
    assert Item.objects.filter(project=project, origin="base").count() == 150
    assert Item.objects.filter(project=project, origin="simulation").count() == 12
    admin = get_user_model().objects.get(username="demo-admin")
    assert admin.has_perm("reviewapp.manage_rollout")
    reviewer = get_user_model().objects.get(username="demo-reviewer")
    assert reviewer.check_password("reviewer-password-from-env")
    assert project.reviewers.filter(pk=reviewer.pk).exists()
    # The generated admin password is printed once and kept in a private file.
    credentials = tmp_path / "demo-credentials.txt"
    assert "demo-admin" in credentials.read_text() and oct(credentials.stat().st_mode)[-3:] == "600"
    password = credentials.read_text().split()[1]
    assert password in first and admin.check_password(password)

    call_command("seed_demo", **options)
    second = capsys.readouterr().out
    assert password not in second
    assert ModelVersion.objects.filter(project=project).count() == 1
    assert TrainingRun.objects.filter(project=project).count() == 1
    assert Item.objects.filter(project=project).count() == 162
    assert get_user_model().objects.filter(username__startswith="demo-").count() == 2
