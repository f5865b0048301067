"""The Retrain form: parses training parameters (defaults that work on a CPU in seconds)."""

from __future__ import annotations

from typing import Any

from django import forms

from reviewapp import ml


def _choices(name: str) -> list[tuple[str, str]]:
    return [(value, value) for value in ml.TRAINING_CHOICES[name]]


class RetrainForm(forms.Form):
    arch = forms.ChoiceField(label="Architecture", choices=lambda: _choices("arch"))
    epochs = forms.IntegerField(min_value=1, max_value=200, initial=3)
    image_size = forms.IntegerField(label="Image size", min_value=8, max_value=1024, initial=32)
    resize_method = forms.ChoiceField(label="Resize", choices=lambda: _choices("resize_method"))
    augment = forms.ChoiceField(label="Augmentation", choices=lambda: _choices("augment"))
    find_lr = forms.BooleanField(label="Find the learning rate (lr_find)", required=False)
    lr = forms.FloatField(label="Learning rate", min_value=1e-7, max_value=10, initial=2e-3)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["arch"].initial = "resnet18"
        self.fields["resize_method"].initial = "squish"
        self.fields["augment"].initial = "none"
        self.fields["lr"].required = False

    def params(self) -> dict[str, Any]:
        """TrainConfig fields from the cleaned data."""
        data = self.cleaned_data
        lr = None if data["find_lr"] else (data.get("lr") or 2e-3)
        fields = ("arch", "epochs", "image_size", "resize_method", "augment")
        return {**{name: data[name] for name in fields}, "lr": lr}
