"""Network graphs in plain torch: the torchvision body plus the same head fastai's vision_learner
builds, so that serving needs no fastai and an artifact's state dict loads with `strict=True`.
"""

import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision.models as tvm
from safetensors.torch import load_file
from torch import nn

logger = logging.getLogger(__name__)


SMALL_CNN_FEATURES = 64  # channels of small_cnn's last conv block


def _conv_block(n_in: int, n_out: int) -> nn.Sequential:
    """Two 3×3 conv-BN-ReLU layers, then a 2×2 max-pool (VGG-style)."""
    layers: list[nn.Module] = []
    for i in range(2):
        layers += [
            nn.Conv2d(n_in if i == 0 else n_out, n_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(n_out),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


def small_cnn(*, weights=None, pretrained: bool = False, num_classes: int = 1000) -> nn.Sequential:
    """A small CNN for 28×28 images (Fashion-MNIST): two conv blocks of 32 and 64 channels,
    global pooling, a linear classifier; ~70k parameters, minutes on a CPU. Called like a
    torchvision constructor (fastai passes ``pretrained``, our code ``weights``); it has no
    pretrained weights."""
    if weights is not None or pretrained:
        raise ValueError("small_cnn has no pretrained weights; train it from scratch")
    return nn.Sequential(
        _conv_block(3, 32),
        _conv_block(32, SMALL_CNN_FEATURES),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(SMALL_CNN_FEATURES, num_classes),
    )


def _available_architectures() -> dict[str, Callable[..., nn.Module]]:
    names = ["resnet18", "resnet34", "resnet50", "convnext_tiny", "efficientnet_b0"]
    found = {name: getattr(tvm, name) for name in names if hasattr(tvm, name)}
    return {**found, "small_cnn": small_cnn}


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = _available_architectures()
# Where fastai cuts the torchvision model (model_meta for resnets; the last pooling child for
# the others, see fastai.vision.learner.create_body) and how many channels the body emits.
_BODY_CUT = {
    "resnet18": -2,
    "resnet34": -2,
    "resnet50": -2,
    "convnext_tiny": 1,
    "efficientnet_b0": 1,
    "small_cnn": 2,
}
_BODY_FEATURES = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "convnext_tiny": 768,
    "efficientnet_b0": 1280,
    "small_cnn": SMALL_CNN_FEATURES,
}
HIDDEN_FEATURES = 512  # width of fastai's default head hidden layer = our embedding size


def check_arch(arch: str) -> None:
    """Raise ValueError unless `arch` is in the allowlist."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")


class ConcatPool(nn.Module):
    """Concatenate adaptive max- and average-pooling (fastai's AdaptiveConcatPool2d)."""

    def __init__(self) -> None:
        super().__init__()
        self.ap = nn.AdaptiveAvgPool2d(1)
        self.mp = nn.AdaptiveMaxPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mp(x), self.ap(x)], 1)


def build_head(n_features: int, n_out: int) -> nn.Sequential:
    """fastai's default create_head: pool, flatten, BN-dropout-linear-ReLU, BN-dropout-linear."""
    nf = n_features * 2
    return nn.Sequential(
        ConcatPool(),
        nn.Flatten(1),
        nn.BatchNorm1d(nf),
        nn.Dropout(0.25),
        nn.Linear(nf, HIDDEN_FEATURES, bias=False),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(HIDDEN_FEATURES),
        nn.Dropout(0.5),
        nn.Linear(HIDDEN_FEATURES, n_out, bias=False),
    )


def build_body(arch: str, backbone: nn.Module | None = None) -> nn.Sequential:
    """The feature extractor of a torchvision architecture, cut where fastai cuts it."""
    check_arch(arch)
    model = backbone if backbone is not None else ARCHITECTURES[arch](weights=None)
    return nn.Sequential(*list(model.children())[: _BODY_CUT[arch]])


def build_network(arch: str, n_out: int) -> nn.Sequential:
    """The full (body, head) network with the state-dict layout of fastai's vision_learner."""
    return nn.Sequential(build_body(arch), build_head(_BODY_FEATURES[arch], n_out))


def forward_with_features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (logits, penultimate embeddings) of a (body, head) network."""
    body, head = model[0], model[1]
    features = head[:-1](body(x))
    return head[-1](features), features


def read_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a local state dict: safetensors, or a torch file restricted to tensors (no pickles)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} does not exist (weights are never downloaded)"
        )
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"weights file {path} does not hold a state dict")
    return state.get("state_dict", state)


def body_state_from_weights(arch: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map torchvision (`conv1.weight`) or (body, head) (`0.0.weight`) weights to body keys."""
    if any(key.startswith("0.") for key in state):
        return {k[2:]: v for k, v in state.items() if k.startswith("0.")}
    model = ARCHITECTURES[arch](weights=None)
    names = [name for name, _ in model.named_children()]
    head_prefixes = tuple(f"{name}." for name in names[_BODY_CUT[arch] :])
    body_only = {k: v for k, v in state.items() if not k.startswith(head_prefixes)}
    missing, unexpected = model.load_state_dict(body_only, strict=False)
    missing = [k for k in missing if not k.startswith(head_prefixes)]
    if missing or unexpected:
        raise ValueError(
            f"weights do not fit {arch}: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return build_body(arch, backbone=model).state_dict()


def load_backbone_weights(model: nn.Module, arch: str, path: str | os.PathLike) -> None:
    """Load a local weights file into the body of a (body, head) network, strictly."""
    body_state = body_state_from_weights(arch, read_weights_file(path))
    model[0].load_state_dict(body_state, strict=True)
    logger.info("nets.backbone_loaded arch=%s path=%s tensors=%d", arch, path, len(body_state))
