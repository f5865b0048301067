"""The frozen-holdout check: a challenger worse than the champion there is never promoted."""

import pytest
from django.urls import reverse

from reviewapp.models import Alias, RunState, RunTrigger, TrainingRun
from reviewapp.rollout import champion as rollout_champion
from reviewapp.rollout import services as rollout
from reviewapp.rollout import versions
from reviewapp.rollout.holdout import holdout_check
from tests.factories import ModelVersionFactory, ProjectFactory, RolloutAdminFactory


def _holdout(n, candidate, champion, candidate_only=None, champion_only=None):
    entry = {
        "n": n,
        "candidate": {"correct": candidate, "accuracy": candidate / n, "ci": [0, 1]},
        "champion": {"correct": champion, "accuracy": champion / n, "ci": [0, 1]},
    }
    if candidate_only is not None:
        entry["paired"] = {"candidate_only": candidate_only, "champion_only": champion_only}
    return entry


def test_a_clearly_worse_challenger_is_refused_by_the_tolerance():
    verdict = holdout_check(_holdout(400, 380, 390, candidate_only=2, champion_only=12))
    assert not verdict.allowed
    assert "380/400" in verdict.message and "390/400" in verdict.message


def test_mcnemar_refuses_a_small_but_consistent_loss_within_the_tolerance():
    # 0.8 points worse (inside the 1-point tolerance) but every discordant item goes against it:
    # one-sided exact McNemar p = 0.5**8 = 0.0039.
    verdict = holdout_check(_holdout(1000, 972, 980, candidate_only=0, champion_only=8))
    assert not verdict.allowed and "McNemar" in verdict.message
    assert verdict.evidence["mcnemar_p_worse"] == pytest.approx(0.5**8, abs=1e-6)


def test_a_tie_within_noise_and_a_better_challenger_pass():
    assert holdout_check(_holdout(400, 388, 390, candidate_only=6, champion_only=8)).allowed
    assert holdout_check(_holdout(400, 396, 390, candidate_only=8, champion_only=2)).allowed


def test_without_a_champion_or_a_holdout_there_is_nothing_to_refuse():
    assert holdout_check(None).allowed
    assert holdout_check({"n": 0}).allowed
    assert holdout_check({**_holdout(10, 9, 9), "champion": None}).allowed


def test_runs_evaluated_before_pairs_were_stored_are_judged_on_their_counts():
    assert not holdout_check(_holdout(400, 370, 390)).allowed
    assert holdout_check(_holdout(400, 392, 390)).allowed


def _challenger_with_holdout(project, admin, holdout):
    run = TrainingRun.objects.create(
        project=project,
        trigger=RunTrigger.MANUAL,
        state=RunState.SUCCEEDED,
        evaluation={"sets": {"holdout": holdout}},
    )
    challenger = ModelVersionFactory(project=project, training_run=run)
    rollout_champion.challenger_set(
        project=project, model_version=challenger, actor=admin, reason="candidate"
    )
    return challenger


@pytest.mark.django_db
def test_champion_promote_refuses_a_worse_challenger_even_with_an_override():
    project, admin = ProjectFactory(), RolloutAdminFactory()
    champion = ModelVersionFactory(project=project)
    versions.alias_set(project=project, alias=Alias.CHAMPION, model_version=champion, reason="t")
    _challenger_with_holdout(project, admin, _holdout(300, 270, 290, 3, 23))
    with pytest.raises(rollout.RolloutRefused, match="Promotion refused: on the frozen holdout"):
        rollout_champion.champion_promote(project=project, actor=admin, override_reason="ship it")
    assert versions.champion_of(project) == champion


@pytest.mark.django_db
def test_champion_promote_lets_a_better_challenger_through_with_the_evidence_logged():
    project, admin = ProjectFactory(), RolloutAdminFactory()
    champion = ModelVersionFactory(project=project)
    versions.alias_set(project=project, alias=Alias.CHAMPION, model_version=champion, reason="t")
    better = _challenger_with_holdout(project, admin, _holdout(300, 291, 280, 14, 3))
    rollout_champion.champion_promote(project=project, actor=admin, override_reason="gate later")
    assert versions.champion_of(project) == better
    event = project.events.order_by("-created_at", "-pk").first()
    assert event.evidence["holdout"]["candidate_only"] == 14


@pytest.mark.django_db
def test_the_rollout_page_says_why_a_worse_challenger_was_refused(client):
    project, admin = ProjectFactory(), RolloutAdminFactory()
    champion = ModelVersionFactory(project=project)
    versions.alias_set(project=project, alias=Alias.CHAMPION, model_version=champion, reason="t")
    _challenger_with_holdout(project, admin, _holdout(300, 270, 290, 3, 23))
    client.force_login(admin)
    page = client.post(
        reverse("rollout-champion-promote", args=[project.slug]),
        {"override_reason": "ship it"},
        follow=True,
    ).content.decode()
    assert "Promotion refused: on the frozen holdout the challenger is right on 270/300" in page
    assert versions.champion_of(project) == champion
