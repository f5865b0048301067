"""mlcore never imports Django or Celery; serving does not need fastai."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return {name.split(".")[0] for name in result.stdout.split()}


def test_importing_all_of_mlcore_pulls_no_django_or_celery():
    modules = _modules_after(
        "import mlcore, mlcore.data, mlcore.train, mlcore.predict, mlcore.artifacts, "
        "mlcore.interpret, mlcore.ood, mlcore.shifts, mlcore.demo, mlcore.evaluate, mlcore.cli"
    )
    assert "fastai" in modules  # the statement really imported the training stack
    assert not modules & {"django", "celery", "kombu"}


def test_serving_does_not_import_fastai():
    modules = _modules_after("import mlcore.predict, mlcore.artifacts, mlcore.data")
    assert "torch" in modules
    assert "fastai" not in modules
