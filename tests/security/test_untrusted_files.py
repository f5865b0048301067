"""Nothing from outside is unpickled; uploads are decoded before they are trusted; client file
names never become paths."""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from django.conf import settings
from django.urls import reverse

from mlcore.artifacts import MANIFEST_FILE, WEIGHTS_FILE, ArtifactError, sha256_bytes
from mlcore.nets import read_weights_file
from mlcore.predict import Predictor
from reviewapp import ml
from reviewapp.models import Item
from tests.factories import png_bytes

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["mlcore", "reviewapp", "config", "bench", "scripts", "manage.py"]

# Modules whose loaders run code from the data they read.
_PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve"}
_PICKLE_MODULES |= {"marshal", "jsonpickle"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


def forbidden_calls(source: str) -> list[str]:
    """Every place in the source that could unpickle (or otherwise execute) loaded data."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if bad := {n.split(".")[0] for n in names} & _PICKLE_MODULES:
                found.append(f"line {node.lineno}: imports {sorted(bad)[0]}")
            if any(a.name == "load_learner" for a in node.names):
                found.append(f"line {node.lineno}: imports load_learner")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        short = name.rsplit(".", 1)[-1]
        if name in {"torch.load"} and _keyword(node, "weights_only") is not True:
            found.append(f"line {node.lineno}: torch.load without weights_only=True")
        elif short in {"load_learner", "read_pickle", "unsafe_load"}:
            found.append(f"line {node.lineno}: {name}")
        elif name in {"torch.jit.load", "torch.package.PackageImporter"}:
            found.append(f"line {node.lineno}: {name} runs code from the file")
        elif name in {"np.load", "numpy.load"} and _keyword(node, "allow_pickle") is not False:
            if _keyword(node, "allow_pickle") is True:
                found.append(f"line {node.lineno}: {name}(allow_pickle=True)")
        elif name == "yaml.load" and "Safe" not in ast.unparse(node):
            found.append(f"line {node.lineno}: yaml.load without a safe loader")
    return found


def test_the_scanner_finds_each_forbidden_form():
    source = "\n".join(
        [
            "import pickle",
            "from joblib import load",
            "from fastai.learner import load_learner",
            "torch.load(p)",
            "torch.load(p, weights_only=False)",
            "np.load(p, allow_pickle=True)",
            "yaml.load(text)",
            "torch.jit.load(p)",
            "pd.read_pickle(p)",
            "learner = load_learner(p)",
            # Allowed: safe forms.
            "torch.load(p, map_location='cpu', weights_only=True)",
            "np.load(p)",
            "yaml.load(text, Loader=yaml.SafeLoader)",
            "json.loads(text)",
        ]
    )
    lines = sorted({int(f.split(":")[0].split()[1]) for f in forbidden_calls(source)})
    assert lines == list(range(1, 11))


def test_no_source_file_unpickles_or_loads_code():
    offenders = {}
    for entry in SCANNED:
        for path in [ROOT / entry] if entry.endswith(".py") else (ROOT / entry).rglob("*.py"):
            if found := forbidden_calls(path.read_text()):
                offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


class _Exploit:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


def _hostile_artifact(source: Path, dest: Path, payload: bytes) -> Path:
    """A copy of a real artifact whose weights are a pickle, with a manifest that matches it."""
    shutil.copytree(source, dest)
    for path in [dest, *dest.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (dest / WEIGHTS_FILE).write_bytes(payload)
    manifest = json.loads((dest / MANIFEST_FILE).read_text())
    manifest["files"][WEIGHTS_FILE]["sha256"] = sha256_bytes(payload)
    (dest / MANIFEST_FILE).write_text(json.dumps(manifest))
    return dest


@pytest.mark.parametrize("container", ["pickle", "torch.save"])
def test_an_artifact_carrying_a_pickle_is_refused_without_running_it(
    tiny_artifact, tmp_path, container, monkeypatch
):
    marker = tmp_path / "pwned"
    if container == "pickle":
        payload = pickle.dumps({"weight": _Exploit(marker)})
    else:
        buffer = io.BytesIO()
        torch.save({"weight": _Exploit(marker)}, buffer)
        payload = buffer.getvalue()
    hostile = _hostile_artifact(tiny_artifact.path, tmp_path / "artifact", payload)
    with pytest.raises(ArtifactError, match="not a valid safetensors file"):
        Predictor.from_artifact(hostile)
    # Through the app, with the sha256 the model version registered: refused as well (with an
    # empty per-process cache, so that the files are read).
    monkeypatch.setattr(ml, "_PREDICTORS", {})
    with pytest.raises(ArtifactError):
        ml.get_predictor(artifact_path=str(hostile), sha256=tiny_artifact.sha256)
    assert not marker.exists()


def test_a_weights_file_carrying_a_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    weights = tmp_path / "resnet18.pth"
    torch.save({"conv1.weight": _Exploit(marker)}, weights)
    with pytest.raises(pickle.UnpicklingError):
        read_weights_file(weights)
    assert not marker.exists()


# --- Uploads through the web page -----------------------------------------------------------


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    """A multipart body built by hand: Django's test client would clean the file name itself."""
    boundary = "----handoff-security"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    )
    body = head.encode("utf-8", "surrogateescape") + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


NAMES = {
    "dotdot": "../../../../tmp/evil.png",
    "absolute": "/etc/cron.d/evil.png",
    "backslash": "..\\..\\evil.png",
    "nul": "a\x00b.png",
    "long-unicode": "é" * 200 + ".png",
}


@pytest.mark.parametrize("case", list(NAMES))
def test_client_file_names_never_become_paths(world, case):
    media = Path(settings.MEDIA_ROOT)
    before = _files_under(media)
    data = png_bytes(7000 + list(NAMES).index(case))  # new content: a new file every case
    body, content_type = _multipart(NAMES[case], data)
    url = reverse("upload", args=[world.project_a.slug])
    response = world.client("rollout_admin").generic("POST", url, body, content_type=content_type)
    assert response.status_code == 302
    item = Item.objects.get(sha256=hashlib.sha256(data).hexdigest())
    # Stored under its content hash inside MEDIA_ROOT, and nowhere else.
    stored = media / item.image.name
    assert _files_under(media) - before == {stored}
    assert item.sha256 in item.image.name and stored.resolve().is_relative_to(media.resolve())
    assert not Path("/tmp/evil.png").exists() and not Path("/etc/cron.d/evil.png").exists()
    # What is kept of the name is a label only: no separators, no control characters, bounded.
    kept = item.original_filename
    assert len(kept) <= 255 and not set(kept) & {"/", "\\", "\x00"}


def test_an_absurdly_long_file_name_is_refused_whole(world):
    media = Path(settings.MEDIA_ROOT)
    before, items = _files_under(media), Item.objects.count()
    body, content_type = _multipart("x" * 5000 + ".png", png_bytes(7100))
    url = reverse("upload", args=[world.project_a.slug])
    response = world.client("rollout_admin").generic("POST", url, body, content_type=content_type)
    assert response.status_code == 400  # Django's multipart header limit
    assert (Item.objects.count(), _files_under(media)) == (items, before)


@pytest.mark.parametrize(
    "data",
    [png_bytes(7002)[:-30], b"<html><script>alert(1)</script></html>", b"GIF89a" + b"\x00" * 20],
    ids=["truncated", "html-named-png", "gif-header-only"],
)
def test_uploads_that_do_not_decode_fully_store_nothing(world, data):
    media = Path(settings.MEDIA_ROOT)
    before, items = _files_under(media), Item.objects.count()
    body, content_type = _multipart("photo.png", data)
    url = reverse("upload", args=[world.project_a.slug])
    admin = world.client("rollout_admin")
    response = admin.generic("POST", url, body, content_type=content_type)
    page = admin.get(response["Location"])
    assert any("photo.png" in str(m) for m in page.context["messages"])
    assert Item.objects.count() == items
    assert _files_under(media) == before


def test_the_api_refuses_a_file_name_longer_than_255(world):
    boundary = "----handoff-security"
    name = "x" * 300 + ".png"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png_bytes(7003)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    url = f"/api/v1/projects/{world.project_a.slug}/items/"
    response = world.client("token_a").generic(
        "POST", url, body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 400
    assert "unsafe filename" in response.json()["error"]["message"]
