"""Forms of the rollout admin pages: parsing only; the rules live in reviewapp.rollout."""

from __future__ import annotations

from django import forms

from reviewapp.models.projects import ReviewOrder, email_list, email_list_validate

REASON_HELP = "Why: kept in the audit log."


class PromoteForm(forms.Form):
    reason = forms.CharField(required=False, widget=forms.TextInput(attrs={"size": 40}))
    override_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 50}),
        help_text="Only to promote although the gate fails: say why.",
    )


class KillSwitchForm(forms.Form):
    enabled = forms.BooleanField(required=False)
    reason = forms.CharField(help_text=REASON_HELP)


class ShareForm(forms.Form):
    percent = forms.FloatField(min_value=0, max_value=100)
    reason = forms.CharField(help_text=REASON_HELP)

    def share(self) -> dict:
        """The share as a fraction, with the reason, as the rollout share setters take them."""
        return {"share": self.cleaned_data["percent"] / 100, "reason": self.cleaned_data["reason"]}


class PolicyForm(forms.Form):
    error_budget_percent = forms.FloatField(
        min_value=0.01,
        max_value=50,
        label="Error budget ε (%)",
        help_text="The model's solo decisions may be wrong at most this share of the time.",
    )
    confidence_percent = forms.FloatField(
        min_value=50,
        max_value=99.99,
        label="Confidence 1 − δ (%)",
        help_text="How sure the budget must hold (95%: it fails at most 1 time in 20).",
    )
    ood_threshold = forms.FloatField(required=False)
    audit_rate = forms.FloatField(
        min_value=0, max_value=1, help_text="The lowest audit rate of automatic decisions."
    )
    priority_labels = forms.CharField(required=False, help_text="Comma-separated labels.")
    auto_promote_after_hours = forms.FloatField(required=False, min_value=0)
    alert_top_k = forms.IntegerField(
        min_value=0, help_text="Alert when a priority label is in the top k (0: only first)."
    )
    alert_min_probability = forms.FloatField(
        min_value=0, max_value=1, help_text="...with at least this probability."
    )
    alert_deadline_minutes = forms.IntegerField(
        min_value=1, help_text="Minutes before an unacknowledged alert escalates."
    )
    alert_oncall_emails = forms.CharField(
        required=False,
        validators=[email_list_validate],
        help_text="On-call list, comma-separated e-mail addresses.",
    )
    alert_escalation_emails = forms.CharField(
        required=False,
        validators=[email_list_validate],
        help_text="Told as well when an alert escalates (comma-separated).",
    )
    review_order = forms.ChoiceField(
        choices=ReviewOrder.choices,
        label="Review order",
        help_text="Stage work most informative first (uncertain, unlike what was reviewed), or "
        "first in, first out. Random calibration and audit samples stay first in, first out.",
    )
    reason = forms.CharField(help_text=REASON_HELP)

    @classmethod
    def for_project(cls, project) -> PolicyForm:
        """Prefilled with the project's current policy."""
        return cls(
            initial={
                "error_budget_percent": round(project.error_budget * 100, 4),
                "confidence_percent": round((1 - project.error_delta) * 100, 4),
                "ood_threshold": project.ood_threshold,
                "audit_rate": project.audit_rate,
                "priority_labels": ", ".join(map(str, project.priority_labels or [])),
                "auto_promote_after_hours": project.auto_promote_after_hours,
                "alert_top_k": project.alert_top_k,
                "alert_min_probability": project.alert_min_probability,
                "alert_deadline_minutes": project.alert_deadline_minutes,
                "alert_oncall_emails": project.alert_oncall_emails,
                "alert_escalation_emails": project.alert_escalation_emails,
                "review_order": project.review_order,
            }
        )

    def clean_priority_labels(self) -> list[str]:
        text = self.cleaned_data.get("priority_labels") or ""
        return [p.strip() for p in text.split(",") if p.strip()]

    def clean_alert_oncall_emails(self) -> str:
        return ", ".join(email_list(self.cleaned_data.get("alert_oncall_emails") or ""))

    def clean_alert_escalation_emails(self) -> str:
        return ", ".join(email_list(self.cleaned_data.get("alert_escalation_emails") or ""))

    def changes(self) -> dict:
        """The policy fields as rollout.policy_set takes them (ε and δ as fractions)."""
        data = dict(self.cleaned_data)
        data.pop("reason")
        data["error_budget"] = round(data.pop("error_budget_percent") / 100, 6)
        data["error_delta"] = round(1 - data.pop("confidence_percent") / 100, 6)
        return data


class ChallengerForm(forms.Form):
    model_version = forms.IntegerField(help_text="Version number")
    reason = forms.CharField(help_text=REASON_HELP)
