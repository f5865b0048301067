"""Forms: parse and validate request input (no domain logic)."""

from __future__ import annotations

from django import forms

from reviewapp.models import Verdict


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """A file field that accepts several files at once."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class UploadForm(forms.Form):
    images = MultipleImageField(label="Images")


class DecisionForm(forms.Form):
    task = forms.IntegerField(widget=forms.HiddenInput)
    verdict = forms.ChoiceField(choices=Verdict.choices, required=False)
    label = forms.CharField(required=False, max_length=100)
    duration_ms = forms.IntegerField(required=False, min_value=0, max_value=86_400_000)

    def clean(self):
        """A label button alone means "this is the label" (a correction, or a blind pick)."""
        cleaned = super().clean()
        if not cleaned.get("verdict"):
            if not cleaned.get("label"):
                raise forms.ValidationError("Choose a label, confirm, out-of-domain or skip.")
            cleaned["verdict"] = Verdict.CORRECT
        return cleaned
