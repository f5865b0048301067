"""The dashboard's audited accuracy is weighted by each audit's inclusion probability."""

import pytest
from django.urls import reverse

from reviewapp.models import ReviewReason, Stage
from reviewapp.monitoring import dashboard_selectors as ds
from reviewapp.review import services as queues
from tests.factories import PredictionFactory, ProjectFactory, ReviewerFactory, ReviewTaskFactory

pytestmark = pytest.mark.django_db


def _audit(project, reviewer, *, p, right):
    prediction = PredictionFactory(item__project=project, label="3")
    task = ReviewTaskFactory(prediction=prediction, reason=ReviewReason.AUDIT, audit_probability=p)
    queues.decision_submit(
        task=task, reviewer=reviewer, verdict="correct", label="3" if right else "5"
    )


def test_audited_accuracy_weighs_each_audit_by_one_over_its_probability(client):
    project = ProjectFactory(stage=Stage.AUTOMATED)
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    # Two audits at a 50% rate (right), one at 10% (wrong): the wrong one stands for 10 items,
    # the right ones for 2 each. Weighted: (2 + 2) / (2 + 2 + 10) = 4/14; unweighted it is 2/3.
    _audit(project, reviewer, p=0.5, right=True)
    _audit(project, reviewer, p=0.5, right=True)
    _audit(project, reviewer, p=0.1, right=False)
    window = ds.dashboard_window(project=project)
    total = ds.audited_accuracy_total(project=project, window=window)
    assert total.rate == pytest.approx(4 / 14)
    # Kish's effective size: (2 + 2 + 10)^2 / (4 + 4 + 100) = 196 / 108.
    assert total.n == pytest.approx(196 / 108)
    assert total.low < 4 / 14 < total.high
    series = [p for p in ds.audited_accuracy_series(project=project, window=window) if p.n]
    assert len(series) == 1 and series[0].rate == pytest.approx(4 / 14)
    client.force_login(reviewer)
    html = client.get(reverse("project", args=[project.slug])).content.decode()
    assert 'id="audited-accuracy">0.286</b> weighted audited accuracy' in html
