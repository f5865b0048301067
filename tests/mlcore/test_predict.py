"""Prediction: structure, calibration, batching, model view, errors."""

import io

import numpy as np
import pytest
from PIL import Image

from mlcore.images import ImageLoadError
from mlcore.predict import Predictor


@pytest.fixture(scope="module")
def predictor(artifact) -> Predictor:
    return Predictor.from_artifact(artifact.path)


def test_predictions_are_complete_and_calibrated(predictor, valid_records):
    records = valid_records[:40]
    results = predictor.predict([r.path for r in records])
    assert len(results) == 40
    for result in results:
        assert set(result.probabilities) == set(predictor.labels)
        assert sum(result.probabilities.values()) == pytest.approx(1.0)
        assert [label for label, _ in result.top] == sorted(
            result.probabilities, key=result.probabilities.get, reverse=True
        )[:3]
        assert result.label == result.top[0][0]
        assert result.confidence == pytest.approx(max(result.probabilities.values()))
        assert set(result.ood_scores) == {"msp", "energy", "knn"}
        assert result.ood_score == result.ood_scores["knn"]
        assert result.is_ood == (result.ood_score > predictor.ood_thresholds["knn"])
    accuracy = np.mean([r.label == rec.label for r, rec in zip(results, records, strict=True)])
    assert accuracy >= 0.8


def test_confidence_is_temperature_scaled(predictor, valid_images):
    logits, _ = predictor.outputs(valid_images[:5])
    raw = np.exp(logits - logits.max(1, keepdims=True))
    raw /= raw.sum(1, keepdims=True)
    results = predictor.predict(valid_images[:5])
    calibrated = [r.confidence for r in results]
    assert predictor.temperature != 1.0
    assert not np.allclose(calibrated, raw.max(1))


def test_batch_size_does_not_change_results(predictor, valid_images):
    big = predictor.predict(valid_images[:12], batch_size=64)
    small = predictor.predict(valid_images[:12], batch_size=5)
    for a, b in zip(big, small, strict=True):
        assert a.label == b.label
        assert a.confidence == pytest.approx(b.confidence, abs=1e-5)


def test_accepts_paths_bytes_and_pil_images(predictor, valid_records):
    path = valid_records[0].path
    data = open(path, "rb").read()
    results = predictor.predict([path, data, Image.open(io.BytesIO(data)), io.BytesIO(data)])
    assert len({round(r.confidence, 6) for r in results}) == 1


def test_model_view_is_exactly_what_the_model_sees(predictor):
    wide = Image.new("RGB", (300, 100), (10, 200, 30))
    view = predictor.model_view(wide)
    assert view.mode == "RGB" and view.size == (24, 24)
    x = predictor.preprocessing.batch([view])
    direct = predictor.preprocessing.batch([predictor.preprocessing.view(wide)])
    assert (x == direct).all()


def test_features_are_penultimate_embeddings(predictor, valid_images):
    features = predictor.features(valid_images[:3])
    assert features.shape == (3, 512)


def test_a_corrupt_image_names_its_position(predictor, valid_records):
    with pytest.raises(ImageLoadError, match="image #1"):
        predictor.predict([valid_records[0].path, b"garbage"])


def test_a_single_image_must_be_wrapped(predictor, valid_records):
    with pytest.raises(TypeError, match="sequence"):
        predictor.predict(valid_records[0].path)


def test_result_serialises_to_json(predictor, valid_images):
    import json

    data = predictor.predict(valid_images[:1])[0].to_dict()
    assert json.loads(json.dumps(data))["label"] == data["label"]
