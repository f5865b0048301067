"""Interpretation works on validation and production (prediction, human label) pairs."""

import numpy as np
import pytest

from mlcore import interpret

LABELS = ["cat", "dog", "fox"]
Y_TRUE = ["cat", "cat", "dog", "dog", "dog", "fox", "fox"]
Y_PRED = ["cat", "dog", "dog", "dog", "cat", "dog", "fox"]


def test_confusion_matrix_rows_are_actual_columns_predicted():
    matrix = interpret.confusion_matrix(Y_TRUE, Y_PRED, LABELS)
    assert matrix.tolist() == [[1, 1, 0], [1, 2, 0], [0, 1, 1]]


def test_most_confused_pairs_are_sorted_by_count():
    pairs = interpret.most_confused(Y_TRUE + ["fox"], Y_PRED + ["dog"], LABELS)
    assert pairs[0] == ("fox", "dog", 2)
    assert set(pairs[1:]) == {("cat", "dog", 1), ("dog", "cat", 1)}
    assert interpret.most_confused(Y_TRUE, Y_PRED, LABELS, min_count=2) == []


def test_per_class_precision_and_recall():
    report = interpret.per_class_report(Y_TRUE, Y_PRED, LABELS)
    assert report["dog"]["precision"] == pytest.approx(2 / 4)
    assert report["dog"]["recall"] == pytest.approx(2 / 3)
    assert report["fox"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2, "predicted": 1}
    )
    assert interpret.accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 7)


def test_top_losses_with_production_probability_dicts():
    probs = [{"cat": 0.9, "dog": 0.1}, {"dog": 0.99, "cat": 0.01}, {"dog": 0.6, "fox": 0.4}]
    # A human label the model never offered ("fox" for item 1) is the worst loss.
    losses = interpret.top_losses(["cat", "fox", "fox"], ["cat", "dog", "dog"], probs, LABELS)
    assert [row["index"] for row in losses] == [1, 2, 0]
    assert losses[1]["loss"] == pytest.approx(-np.log(0.4))
    array_losses = interpret.top_losses(
        ["cat", "dog"], ["cat", "cat"], np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2]]), LABELS, k=1
    )
    assert array_losses[0]["index"] == 1 and array_losses[0]["probability_actual"] == 0.3


def test_plots_are_real_png_and_svg():
    matrix = interpret.confusion_matrix(Y_TRUE, Y_PRED, LABELS)
    png = interpret.plot_confusion_matrix(matrix, LABELS)
    assert png.startswith(b"\x89PNG")
    svg = interpret.plot_confusion_matrix(matrix, LABELS, fmt="svg", normalize=True)
    assert b"<svg" in svg and b"fox" in svg


def test_unknown_labels_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="wolf"):
        interpret.confusion_matrix(["wolf"], ["cat"], LABELS)


def test_session_model_validation_confusion(trained, valid_records):
    from mlcore.evaluate import evaluate_records
    from mlcore.predict import Predictor

    report = evaluate_records(Predictor.from_trained(trained), valid_records)
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == len(valid_records)
    assert np.trace(matrix) / matrix.sum() == pytest.approx(trained.metrics["valid_accuracy"])
    assert report["nll_calibrated"] < report["nll"]
