"""Admin for API clients (tokens shown once), webhooks (secrets shown once) and deliveries."""

from __future__ import annotations

from django.contrib import admin, messages

from reviewapp.api import auth
from reviewapp.models import ApiClient, DeliveryState, Webhook, WebhookDelivery
from reviewapp.review import webhooks


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "token_prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("projects",)
    search_fields = ("name", "token_prefix")
    filter_horizontal = ("projects",)
    readonly_fields = ("token_prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke", "rotate"]

    def save_model(self, request, obj, form, change) -> None:
        token = None
        if not change:
            token = auth.token_issue(client=obj)
        super().save_model(request, obj, form, change)
        if token:
            messages.warning(
                request, f"Token for {obj.name} (copy it now, it is never shown again): {token}"
            )

    @admin.action(description="Revoke the tokens of the selected clients")
    def revoke(self, request, queryset) -> None:
        for client in queryset:
            auth.api_client_revoke(client=client)
        messages.success(request, f"Revoked {queryset.count()} token(s).")

    @admin.action(description="Issue a new token (the old one stops working)")
    def rotate(self, request, queryset) -> None:
        for client in queryset:
            token = auth.api_client_token_rotate(client=client)
            messages.warning(request, f"New token for {client.name} (shown once): {token}")


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("event_id", "event_type", "outcome", "alert", "state", "attempts", "created_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    show_change_link = True


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("url", "client", "is_active", "created_at")
    list_filter = ("is_active", "client")
    readonly_fields = ("created_at",)
    inlines = [DeliveryInline]

    def save_model(self, request, obj, form, change) -> None:
        secret = None
        if not change:
            secret = obj.secret = webhooks.webhook_secret_generate()
        super().save_model(request, obj, form, change)
        if secret:
            messages.warning(request, f"Signing secret for {obj.url} (shown once): {secret}")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_id", "event_type", "webhook", "state", "attempts", "last_status_code")
    list_filter = ("state", "webhook__client")
    search_fields = ("event_id",)
    actions = ["redeliver"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Send the selected dead letters again")
    def redeliver(self, request, queryset) -> None:
        for delivery in queryset.filter(state=DeliveryState.DEAD):
            webhooks.delivery_redeliver(delivery=delivery)
        messages.success(request, "Dead letters queued again.")
