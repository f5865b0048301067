"""Django admin: usable lists everywhere, history read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from reviewapp.models import (
    AliasAssignment,
    Decision,
    DriftAlarm,
    DriftCheck,
    Item,
    ModelVersion,
    Outcome,
    Prediction,
    Project,
    ReviewTask,
    RolloutEvent,
    TrainingRun,
)
from reviewapp.review import gold


class ReadOnlyAdmin(admin.ModelAdmin):
    """History that must never be edited: viewable, not addable, changeable or deletable."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "stage", "traffic_share", "kill_switch", "created_at")
    list_filter = ("stage", "kill_switch")
    search_fields = ("name", "slug")
    filter_horizontal = ("reviewers",)
    # Rollout fields change only through the rollout engine, so that every change is logged.
    readonly_fields = ("stage", "traffic_share", "kill_switch", "drift_alarm_open", "created_at")


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "origin", "key", "width", "height", "created_at")
    list_filter = ("project", "origin")
    search_fields = ("key", "sha256", "client_key", "original_filename")
    # The file field would link to the media folder, which is not served: link the checked view.
    exclude = ("image",)
    readonly_fields = [f.name for f in Item._meta.fields if f.name != "image"] + ["image_link"]
    date_hierarchy = "created_at"
    actions = ["gold_mark", "gold_clear"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Mark as gold (known label: the human outcome or base label)")
    def gold_mark(self, request, queryset) -> None:
        marked, unknown = gold.gold_items_mark(items=queryset.select_related("project"))
        self.message_user(request, f"{marked} items marked as gold.", messages.SUCCESS)
        if unknown:
            ids = ", ".join(str(item.pk) for item in unknown[:20])
            self.message_user(
                request,
                f"{len(unknown)} items have no known label and were left as they were: {ids}.",
                messages.WARNING,
            )

    @admin.action(description="Stop using as gold")
    def gold_clear(self, request, queryset) -> None:
        cleared = gold.gold_items_clear(items=queryset)
        self.message_user(request, f"{cleared} items are no longer gold.", messages.SUCCESS)

    @admin.display(description="image")
    def image_link(self, obj: Item) -> str:
        url = reverse("item-image", args=[obj.pk])
        html = '<a href="{}"><img src="{}?still=1" alt="item {}" height="96"></a>'
        return format_html(html, url, url, obj.pk)


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("project", "number", "architecture", "input_size", "sha256", "created_at")
    list_filter = ("project", "architecture")
    search_fields = ("sha256",)


@admin.register(AliasAssignment)
class AliasAssignmentAdmin(ReadOnlyAdmin):
    list_display = ("project", "alias", "model_version", "started_at", "ended_at", "actor")
    list_filter = ("project", "alias")


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ("item", "model_version", "label", "confidence", "is_ood", "latency_ms")
    list_filter = ("model_version__project", "label", "is_ood")
    search_fields = ("item__key",)


@admin.register(ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "item", "reason", "priority", "status", "claimed_by")
    list_filter = ("project", "reason", "status")
    search_fields = ("item__key",)
    readonly_fields = ("project", "item", "prediction", "reason", "created_at", "closed_at")


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("id", "item", "reviewer", "verdict", "label", "suggested_label", "created_at")
    list_filter = ("verdict", "item__project", "reviewer")
    search_fields = ("item__key", "reviewer__username")


@admin.register(Outcome)
class OutcomeAdmin(ReadOnlyAdmin):
    list_display = ("item", "label", "is_out_of_domain", "decided_by", "created_at")
    list_filter = ("decided_by", "is_out_of_domain", "item__project")
    search_fields = ("item__key", "label")


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "project", "trigger", "state", "progress", "created_at", "finished_at")
    list_filter = ("project", "state", "trigger")
    exclude = ("snapshot",)


@admin.register(RolloutEvent)
class RolloutEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "project", "kind", "actor_label", "from_value", "to_value")
    list_filter = ("project", "kind")
    search_fields = ("reason", "actor_label")
    date_hierarchy = "created_at"


from reviewapp.admin import api as admin_api  # noqa: E402, F401 - API clients, webhooks, deliveries


@admin.register(DriftAlarm)
class DriftAlarmAdmin(ReadOnlyAdmin):
    list_display = ("project", "statistic", "status", "value", "onset_at", "raised_at")
    list_filter = ("project", "statistic", "status")


@admin.register(DriftCheck)
class DriftCheckAdmin(ReadOnlyAdmin):
    list_display = ("project", "statistic", "window", "n_items", "value", "p_value", "alarming")
    list_filter = ("project", "statistic", "window", "alarming")
