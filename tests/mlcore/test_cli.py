"""The python -m mlcore command line, run in-process."""

import json

from mlcore.cli import main


def test_demo_data_train_predict_evaluate(tmp_path, capsys):
    data = tmp_path / "digits"
    assert main(["demo-data", str(data), "--limit", "150", "--size", "16"]) == 0
    assert "150 images" in capsys.readouterr().out
    out = tmp_path / "artifact"
    code = main(
        ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--size", "16"]
        + ["--batch-size", "32"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["artifact"] == str(out) and len(summary["sha256"]) == 64
    assert "[done]" in captured.err
    image = next((data / "3").iterdir())
    assert main(["predict", "--artifact", str(out), "--json", str(image)]) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert prediction["image"] == str(image) and prediction["label"] in [str(d) for d in range(10)]
    plot = tmp_path / "cm.svg"
    code = main(["evaluate", "--artifact", str(out), "--data", str(data), "--confusion", str(plot)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert 0 < report["n"] < 150 and 0.0 <= report["accuracy"] <= 1.0
    assert b"<svg" in plot.read_bytes()


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["predict", "--artifact", str(tmp_path / "missing"), "x.png"]) == 2
    assert "does not exist" in capsys.readouterr().err
