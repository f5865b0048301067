"""URLs of the reviewer and project pages."""

from django.urls import include, path

from reviewapp.intake import views as intake_views
from reviewapp.review import views as views_desk
from reviewapp.rollout import views as views_rollout
from reviewapp.site import views, views_quality
from reviewapp.training import views as views_training
from reviewapp.training import views_versions

training_run_patterns = [  # under training/runs/<run_id>/
    path("", views_training.run_detail, name="training-run"),
    path("status.json", views_training.run_status, name="training-run-status"),
    path("cancel/", views_training.run_cancel, name="training-run-cancel"),
    path("retry/", views_training.run_retry, name="training-run-retry"),
    path("challenger/", views_training.run_make_challenger, name="training-run-challenger"),
    path("promote/", views_training.run_promote, name="training-run-promote"),
    path("confusion.png", views_training.run_confusion_png, name="training-run-confusion"),
]

rollout_patterns = [  # under projects/<slug>/rollout/
    path("", views_rollout.rollout_dashboard, name="rollout"),
    path("promote/", views_rollout.rollout_promote, name="rollout-promote"),
    path("kill-switch/", views_rollout.rollout_kill_switch, name="rollout-kill-switch"),
    path("traffic/", views_rollout.rollout_traffic, name="rollout-traffic"),
    path("policy/", views_rollout.rollout_policy, name="rollout-policy"),
    path("challenger/", views_rollout.rollout_challenger, name="rollout-challenger"),
    path("challenger/set/", views_rollout.rollout_challenger_set, name="rollout-challenger-set"),
    path("challenger/ab/", views_rollout.rollout_ab_share, name="rollout-ab-share"),
    path(
        "challenger/promote/",
        views_rollout.rollout_champion_promote,
        name="rollout-champion-promote",
    ),
]

quality_patterns = [  # under projects/<slug>/quality/
    path("", views_quality.quality_page, name="quality"),
    path("gold/import/", views_quality.gold_import, name="gold-import"),
    path("gold/promote/<int:item_id>/", views_quality.gold_promote, name="gold-promote"),
]

urlpatterns = [
    # The desk's JSON endpoints first: they take most requests, and URL resolution tries the
    # patterns in order (no other pattern matches these paths).
    path("projects/<slug:slug>/review/decide.json", views_desk.decide_json, name="desk-decide"),
    path("projects/<slug:slug>/review/renew.json", views_desk.renew_json, name="desk-renew"),
    path("projects/<slug:slug>/review/next.json", views_desk.next_json, name="desk-next"),
    path("projects/<slug:slug>/review/undo.json", views_desk.undo_json, name="desk-undo"),
    path("projects/<slug:slug>/review/stats.json", views_desk.stats_json, name="desk-stats"),
    path("", views.home, name="home"),
    path("projects/<slug:slug>/", views.project_detail, name="project"),
    path("projects/<slug:slug>/upload/", intake_views.project_upload, name="upload"),
    path("projects/<slug:slug>/review/", views_desk.desk, name="desk"),
    path("projects/<slug:slug>/review/decide/", views_desk.decide_form, name="decide"),
    path("projects/<slug:slug>/review/undo/", views_desk.undo_form, name="undo"),
    path(
        "projects/<slug:slug>/review/alerts/<int:alert_id>/acknowledge/",
        views_desk.alert_acknowledge,
        name="alert-acknowledge",
    ),
    path("items/<int:item_id>/image/", views.item_image, name="item-image"),
    path("items/<int:item_id>/frames/<int:index>.png", views.item_frame, name="item-frame"),
    path("items/<int:item_id>/model-view.png", views.item_model_view, name="item-model-view"),
    path("projects/<slug:slug>/training/", views_training.training_home, name="training"),
    path(
        "projects/<slug:slug>/training/start/", views_training.training_start, name="training-start"
    ),
    path("training/runs/<int:run_id>/", include(training_run_patterns)),
    path(
        "projects/<slug:slug>/versions/<int:number>/",
        views_versions.version_detail,
        name="model-version",
    ),
    path(
        "projects/<slug:slug>/versions/<int:number>/export/",
        views_versions.version_export,
        name="model-version-export",
    ),
    path("items/<int:item_id>/relabel/", views_training.item_relabel, name="item-relabel"),
    path("projects/<slug:slug>/rollout/", include(rollout_patterns)),
    path("projects/<slug:slug>/quality/", include(quality_patterns)),
]
