"""OOD scores, thresholds and AUROC; far-OOD photos must be caught."""

import numpy as np
import pytest
import torch

from mlcore import ood
from mlcore.evaluate import ood_auroc_table
from mlcore.predict import Predictor
from mlcore.shifts import NEAR_SHIFTS, far_ood_images


def test_auroc_matches_the_rank_definition():
    assert ood.auroc([0, 1, 2], [3, 4]) == 1.0
    assert ood.auroc([3, 4], [0, 1, 2]) == 0.0
    assert ood.auroc([1, 1], [1, 1]) == 0.5
    rng = np.random.default_rng(0)
    neg, pos = rng.normal(0, 1, 300), rng.normal(1, 1, 200)
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert ood.auroc(neg, pos) == pytest.approx(pairwise)
    with pytest.raises(ValueError):
        ood.auroc([], [1.0])


def test_threshold_accepts_the_target_share():
    scores = np.random.default_rng(1).normal(size=1000)
    threshold = ood.calibrate_threshold(scores, 0.95)
    assert 0.95 <= (scores <= threshold).mean() < 0.952


def test_scores_are_oriented_higher_is_more_ood():
    confident, unsure = np.array([[10.0, 0.0, 0.0]]), np.array([[0.1, 0.0, 0.0]])
    probs = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)  # noqa: E731
    assert ood.msp_score(probs(unsure)) > ood.msp_score(probs(confident))
    assert ood.energy_score(unsure) > ood.energy_score(confident)
    bank = ood.build_knn_bank(np.eye(4)[:3] * 5)
    near, far = np.array([[1.0, 0.01, 0, 0]]), np.array([[0, 0, 0, 1.0]])
    assert ood.knn_score(far, bank, k=1) > ood.knn_score(near, bank, k=1)
    assert ood.knn_score(near, bank, k=1)[0] == pytest.approx(0.01, abs=2e-3)


def test_knn_bank_is_subsampled_and_normalised():
    bank = ood.build_knn_bank(np.random.default_rng(0).normal(size=(50, 8)), max_items=20)
    assert bank.shape == (20, 8) and bank.dtype == torch.float16
    assert torch.allclose(bank.float().norm(dim=1), torch.ones(20), atol=1e-3)


@pytest.fixture(scope="module")
def auroc_table(artifact, valid_images):
    predictor = Predictor.from_artifact(artifact.path)
    return ood_auroc_table(predictor, valid_images, far_ood=far_ood_images(96, seed=0))


def test_far_out_of_domain_photos_are_detected(auroc_table):
    far = auroc_table["far_ood"]
    assert far["knn"] >= 0.9, far  # the primary score
    assert far["flagged_knn"] >= 0.5, far


def test_every_near_shift_gets_an_auroc_per_score(auroc_table):
    assert set(auroc_table) == set(NEAR_SHIFTS) | {"far_ood"}
    for row in auroc_table.values():
        for score in ood.SCORES:
            assert 0.0 <= row[score] <= 1.0
    # Inverted, dark digits are far from anything in training.
    assert auroc_table["night"]["knn"] > 0.8
