"""URLs of the REST API, mounted at /api/v1/ (namespace "api")."""

from django.contrib.auth.decorators import login_not_required
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission

from reviewapp.api import views, views_edge, views_export
from reviewapp.api.auth import ApiTokenAuthentication
from reviewapp.api.errors import not_found
from reviewapp.models import ApiClient

app_name = "api"


class TokenOrStaff(BasePermission):
    """The schema and docs: any API token, or a signed-in staff member."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiClient):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


def api(view):
    """Token-authenticated views are exempt from the site's login-required middleware."""
    return login_not_required(view)


_docs = {
    "authentication_classes": [ApiTokenAuthentication, SessionAuthentication],
    "permission_classes": [TokenOrStaff],
}

export_patterns = [  # under projects/<slug>/export/
    path("manifest.csv", api(views_export.ExportCsvView.as_view()), name="export-csv"),
    path("manifest.json", api(views_export.ExportJsonView.as_view()), name="export-json"),
    path("images.zip", api(views_export.ExportZipView.as_view()), name="export-zip"),
]

urlpatterns = [
    # The schema is public (it holds no data, and clients generate code from it); the data is not.
    path(
        "schema/",
        api(SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[])),
        name="schema",
    ),
    path(
        "docs/",
        api(SpectacularSwaggerSplitView.as_view(url_name="api:schema", **_docs)),
        name="docs",
    ),
    path("projects/", api(views.ProjectListView.as_view()), name="projects"),
    path("projects/<slug:slug>/items/", api(views.ItemSubmitView.as_view()), name="submit"),
    path(
        "projects/<slug:slug>/items/batch/",
        api(views.BatchSubmitView.as_view()),
        name="submit-batch",
    ),
    path(
        "projects/<slug:slug>/edge-decisions/",
        api(views_edge.EdgeDecisionsView.as_view()),
        name="edge-decisions",
    ),
    path("projects/<slug:slug>/export/", include(export_patterns)),
    path("items/<int:item_id>/", api(views.ItemStatusView.as_view()), name="item"),
    path("outcomes/", api(views.OutcomeFeedView.as_view()), name="outcomes"),
    path("webhooks/", api(views.WebhookListView.as_view()), name="webhooks"),
    path(
        "webhooks/<int:webhook_id>/deliveries/",
        api(views.WebhookDeliveriesView.as_view()),
        name="webhook-deliveries",
    ),
    re_path(r"^.*$", api(not_found)),
]
