"""The batched inference engine (issue 17): same answers as one image at a time, device switch."""

import numpy as np
import pytest
import torch
from PIL import Image

from mlcore import drift, ood
from mlcore.calibration import softmax
from mlcore.images import image_to_tensor, load_rgb, resize_for_model
from mlcore.model import TrainConfig
from mlcore.nets import forward_with_features
from mlcore.precision import CPU_BATCH_SIZE, DevicePlan, autocast_dtype
from mlcore.predict import Predictor
from mlcore.reference import image_statistics, image_statistics_batch


@pytest.fixture(scope="module")
def predictor(artifact) -> Predictor:
    return Predictor.from_artifact(artifact.path)


def one_image_at_a_time(predictor: Predictor, source) -> dict:
    """The pre-engine path for one image: PIL view, stack, normalise, forward, per-image stats."""
    prep = predictor.preprocessing
    rgb = load_rgb(source)
    view = resize_for_model(rgb, prep.size, prep.method, prep.pad_mode)
    x = image_to_tensor(view).unsqueeze(0).float() / 255.0
    x = (x - torch.tensor(prep.mean).view(1, -1, 1, 1)) / torch.tensor(prep.std).view(1, -1, 1, 1)
    with torch.no_grad():
        logits, features = forward_with_features(predictor.model, x)
    logits, features = logits.numpy(), features.numpy()
    probs = softmax(logits, predictor.temperature)[0]
    return {
        "label": predictor.labels[int(probs.argmax())],
        "probs": probs,
        "knn": ood.knn_score(features, predictor.knn_bank.float())[0],
        "energy": ood.energy_score(logits)[0],
        "embedding": drift.project_embeddings(features)[0],
        "stats": image_statistics(rgb),
    }


def mixed_sources(valid_records) -> list:
    """Digit files (32 px, resized to 24) plus odd shapes: wide, tall, gray, tiny, large."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(150, 90, 3), dtype=np.uint8)
    return [
        *(r.path for r in valid_records[:70]),
        Image.new("RGB", (300, 100), (10, 200, 30)),
        Image.fromarray(noise),
        Image.new("L", (24, 24), 128),
        Image.new("RGB", (1, 40), (250, 250, 250)),
    ]


def test_batched_predictions_equal_one_image_at_a_time(predictor, valid_records):
    sources = mixed_sources(valid_records)
    batched = predictor.predict(sources, batch_size=32)
    assert len(batched) == len(sources)
    for source, result in zip(sources, batched, strict=True):
        single = one_image_at_a_time(predictor, source)
        assert result.label == single["label"]
        got = np.array([result.probabilities[label] for label in predictor.labels])
        np.testing.assert_allclose(got, single["probs"], atol=1e-4)
        assert result.ood_scores["knn"] == pytest.approx(single["knn"], abs=1e-4)
        assert result.ood_scores["energy"] == pytest.approx(single["energy"], abs=1e-4)
        np.testing.assert_allclose(result.embedding, single["embedding"], atol=1e-4)
        assert result.image_stats == pytest.approx(single["stats"], abs=1e-6)


def test_default_chunking_equals_small_chunks(predictor, valid_records):
    sources = [r.path for r in valid_records[: CPU_BATCH_SIZE + 6]]
    default = predictor.predict(sources)
    small = predictor.predict(sources, batch_size=7)
    assert [r.label for r in default] == [r.label for r in small]
    np.testing.assert_allclose(
        [r.ood_score for r in default], [r.ood_score for r in small], atol=1e-5
    )


def test_image_statistics_batch_equals_per_image():
    rng = np.random.default_rng(1)
    images = [
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
        for h, w in [(32, 32), (32, 32), (64, 48), (200, 120), (1, 30), (90, 300), (32, 32)]
    ]
    images.append(Image.new("RGB", (40, 40), (0, 0, 0)))
    images.append(Image.new("L", (50, 20), 77).convert("RGB"))
    batch = image_statistics_batch(images)
    for img, row in zip(images, batch, strict=True):
        expected = image_statistics(img)
        assert list(row) == list(expected)
        assert row == pytest.approx(expected, abs=1e-6)


def test_cpu_plan_is_float32_with_batches_of_64():
    plan = DevicePlan.for_device("cpu")
    assert (plan.dtype, plan.batch_size, plan.on_gpu, plan.precision) == (None, 64, False, "fp32")
    a = torch.randn(8, 8)
    with plan.autocast():
        assert (a @ a).dtype == torch.float32


@pytest.mark.parametrize(
    "device,precision,expected",
    [
        ("cpu", "auto", None),
        ("cpu", "fp16", None),
        ("cuda", "fp32", None),
        ("cuda", "fp16", torch.float16),
        ("cuda", "bf16", torch.bfloat16),
    ],
)
def test_precision_switch(device, precision, expected):
    assert autocast_dtype(device, precision) == expected


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        autocast_dtype("cpu", "int8")
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8").validate()


def test_mixed_precision_training_is_a_no_op_on_cpu(tiny_digits, tmp_path):
    from fastai.callback.channelslast import ChannelsLast
    from fastai.callback.fp16 import MixedPrecision

    from mlcore.train import build_learner

    config = TrainConfig(arch="resnet18", epochs=1, image_size=16, batch_size=32, precision="bf16")
    learn = build_learner(tiny_digits, config, torch.device("cpu"), tmp_path)
    assert not [cb for cb in learn.cbs if isinstance(cb, MixedPrecision | ChannelsLast)]
    assert {p.dtype for p in learn.model.parameters()} == {torch.float32}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_path_matches_cpu(artifact, valid_records):
    sources = [r.path for r in valid_records[:300]]
    cpu = Predictor.from_artifact(artifact.path).predict(sources)
    fp32 = Predictor.from_artifact(artifact.path, device="cuda", precision="fp32").predict(sources)
    mixed = Predictor.from_artifact(artifact.path, device="cuda").predict(sources)
    # cuDNN convolutions use TF32 by default on Ampere and later: close to, not equal to, CPU.
    assert np.mean([a.label == b.label for a, b in zip(cpu, fp32, strict=True)]) >= 0.99
    for a, b in zip(cpu, fp32, strict=True):
        assert a.confidence == pytest.approx(b.confidence, abs=1e-2)
        assert a.ood_score == pytest.approx(b.ood_score, abs=1e-2)
    agreement = np.mean([a.label == b.label for a, b in zip(cpu, mixed, strict=True)])
    assert agreement >= 0.98
    gaps = [abs(a.confidence - b.confidence) for a, b in zip(cpu, mixed, strict=True)]
    assert np.median(gaps) < 0.02
