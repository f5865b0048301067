"""Training: metrics, calibration, progress, cancellation, determinism, silence on stdout."""

import pytest
import torch

from mlcore.train import ARCHITECTURES, TrainConfig, TrainingCancelled, train
from tests.mlcore.conftest import TINY_CONFIG

REQUIRED_METRICS = {
    "valid_accuracy",
    "valid_loss",
    "valid_nll_before_calibration",
    "valid_nll_after_calibration",
    "ece_before",
    "ece_after",
}


def test_session_model_learns_the_digits(trained):
    assert REQUIRED_METRICS <= set(trained.metrics)
    assert trained.metrics["valid_accuracy"] >= 0.85
    assert trained.labels == [str(d) for d in range(10)]
    assert len(trained.history) == 2
    assert trained.n_train + trained.n_valid == 1797


def test_temperature_scaling_lowers_validation_nll(trained):
    metrics = trained.metrics
    assert trained.temperature != 1.0
    assert metrics["valid_nll_after_calibration"] < metrics["valid_nll_before_calibration"]
    assert 0.0 <= metrics["ece_after"] <= 1.0 and 0.0 <= metrics["ece_before"] <= 1.0


def test_progress_reports_are_throttled_monotonic_and_end_done(trained, progress_events):
    assert progress_events, "no progress reported"
    fractions = [p.fraction for p in progress_events]
    assert fractions == sorted(fractions)
    assert progress_events[-1].phase == "done" and progress_events[-1].fraction == 1.0
    assert {p.phase for p in progress_events} <= {"train", "valid", "done"}
    assert all(p.epochs == 2 and 0 <= p.epoch < 2 for p in progress_events)
    batches_total = sum(p.batches for p in progress_events if p.phase == "train")
    assert len(progress_events) < 2 * 30, "progress must be throttled, not one call per batch"
    assert batches_total > 0
    assert any(p.eta_seconds and p.eta_seconds > 0 for p in progress_events[:-1])
    assert progress_events[-1].valid_loss == pytest.approx(trained.metrics["valid_loss"])


def test_reference_stats_and_ood_thresholds_are_recorded(trained):
    ref = trained.reference_stats
    assert set(ref["label_distribution"]) == set(trained.labels)
    assert sum(ref["label_distribution"].values()) == pytest.approx(1.0)
    assert sum(ref["confidence_histogram"]["shares"]) == pytest.approx(1.0)
    assert ref["features"]["dim"] == trained.knn_bank.shape[1] == 512
    assert ref["image_stats"]["gray_share"]["mean"] > 0.99  # the digits are grayscale
    assert set(trained.ood_thresholds) == {"msp", "energy", "knn"}
    accepted = trained.ood_config["validation_acceptance"]
    assert all(0.95 <= share <= 1.0 for share in accepted.values())


def test_training_is_deterministic_on_cpu_silent_and_leaves_global_rng_alone(tiny_digits, capfd):
    torch.manual_seed(123)
    expected_next_random = torch.rand(3)
    torch.manual_seed(123)
    first = train(tiny_digits, TINY_CONFIG)
    assert torch.equal(torch.rand(3), expected_next_random)
    second = train(tiny_digits, TINY_CONFIG)
    out, _ = capfd.readouterr()
    assert out == ""
    a, b = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first.metrics["valid_loss"] == second.metrics["valid_loss"]
    other = train(tiny_digits, TrainConfig(**{**TINY_CONFIG.__dict__, "seed": 1}))
    assert not torch.equal(other.model.state_dict()["1.8.weight"], a["1.8.weight"])


def test_cancellation_stops_training(tiny_digits):
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(TrainingCancelled, match="epoch 0 batch 2"):
        train(tiny_digits, TINY_CONFIG, should_cancel=should_cancel)
    assert len(calls) == 3


def test_fine_tune_schedule_reports_the_frozen_epoch_too(tiny_digits):
    events = []
    config = TrainConfig(**{**TINY_CONFIG.__dict__, "schedule": "fine_tune"})
    model = train(tiny_digits, config, on_progress=events.append)
    assert len(model.history) == 2  # one frozen epoch + one unfrozen
    assert events[-1].epochs == 2 and events[-1].phase == "done"


def test_local_weights_file_initialises_the_backbone(tiny_digits, tmp_path):
    from safetensors.torch import save_file

    backbone = ARCHITECTURES["resnet18"](weights=None)
    torch.nn.init.constant_(backbone.conv1.weight, 0.01)
    path = tmp_path / "resnet18-local.safetensors"
    save_file(backbone.state_dict(), str(path))
    config = TrainConfig(**{**TINY_CONFIG.__dict__, "weights_path": str(path), "lr": 1e-9})
    model = train(tiny_digits, config)
    assert torch.allclose(model.model[0][0].weight, torch.full_like(backbone.conv1.weight, 0.01))


@pytest.mark.parametrize(
    ("field", "value"),
    [("arch", "vgg16"), ("resize_method", "stretch"), ("augment", "max"), ("schedule", "x")],
)
def test_invalid_configs_are_refused_before_any_work(tiny_digits, field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        train(tiny_digits, TrainConfig(**{**TINY_CONFIG.__dict__, field: value}))


def test_missing_weights_file_is_refused(tiny_digits, tmp_path):
    config = TrainConfig(**{**TINY_CONFIG.__dict__, "weights_path": str(tmp_path / "no.pth")})
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        train(tiny_digits, config)
