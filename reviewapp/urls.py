"""URLs of the reviewer and project pages."""

from django.urls import path

from reviewapp import views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<slug:slug>/", views.project_detail, name="project"),
    path("projects/<slug:slug>/upload/", views.project_upload, name="upload"),
    path("projects/<slug:slug>/review/", views.review_desk, name="desk"),
    path("projects/<slug:slug>/review/decide/", views.review_decide, name="decide"),
    path("items/<int:item_id>/image/", views.item_image, name="item-image"),
    path("items/<int:item_id>/model-view.png", views.item_model_view, name="item-model-view"),
]
