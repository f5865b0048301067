"""Pages through HTTP: login everywhere, clear 403s, upload, decide, image access."""

import pytest
from django.urls import reverse

from reviewapp.models import Item, Outcome
from tests.factories import (
    ItemFactory,
    PredictionFactory,
    ProjectFactory,
    ReviewerFactory,
    ReviewTaskFactory,
    RolloutAdminFactory,
    UserFactory,
    png_bytes,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["home", "admin:index"])
def test_anonymous_users_are_sent_to_log_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_item_images_need_login_and_project_access(client):
    item = ItemFactory()
    url = reverse("item-image", args=[item.pk])
    assert client.get(url).status_code == 302
    outsider = ReviewerFactory()
    client.force_login(outsider)
    response = client.get(url)
    assert response.status_code == 403
    assert b"not a reviewer of the project" in response.content
    item.project.reviewers.add(outsider)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_user_without_reviewer_role_gets_a_403_that_says_what_is_missing(client):
    project = ProjectFactory()
    client.force_login(UserFactory())
    response = client.get(reverse("desk", args=[project.slug]))
    assert response.status_code == 403
    assert b"You need the reviewer role" in response.content


def test_logout_is_a_post_and_ends_the_session(client):
    client.force_login(ReviewerFactory())
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_upload_page_stores_good_files_and_names_bad_ones(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    project = ProjectFactory()
    client.force_login(RolloutAdminFactory())
    good = SimpleUploadedFile("good.png", png_bytes(42), content_type="image/png")
    bad = SimpleUploadedFile("notes.png", b"hello", content_type="image/png")
    response = client.post(reverse("upload", args=[project.slug]), {"images": [good, bad]})
    assert response.status_code == 302
    page = client.get(reverse("project", args=[project.slug]))
    text = page.content.decode()
    assert "notes.png: not an image we can read" in text
    assert "1 image(s) added" in text
    assert Item.objects.filter(project=project).count() == 1


def test_reviewers_cannot_upload(client):
    project = ProjectFactory()
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    response = client.post(reverse("upload", args=[project.slug]), {"images": []})
    assert response.status_code == 403
    assert b"Can upload items" in response.content


def _open_task(project):
    return ReviewTaskFactory(prediction=PredictionFactory(item__project=project, label="2"))


def test_desk_shows_the_item_blind_and_a_decision_stores_the_outcome(client):
    project = ProjectFactory()
    task = _open_task(project)
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    page = client.get(reverse("desk", args=[project.slug]))
    html = page.content.decode()
    assert reverse("item-image", args=[task.item_id]) in html
    # Blind: the model's label is nowhere in the page, not even in the embedded data.
    assert '"suggestion": null' in html and 'id="suggestion" hidden' in html
    assert "Blind review" in html
    response = client.post(
        reverse("decide", args=[project.slug]),
        {"task": task.pk, "label": "9", "duration_ms": 850},
    )
    assert response.status_code == 302
    outcome = Outcome.objects.get(item=task.item)
    assert outcome.label == "9"
    assert outcome.decision.duration_ms == 850
    assert "The queue is empty" in client.get(reverse("desk", args=[project.slug])).content.decode()


def test_desk_refuses_a_label_outside_the_project_and_keeps_the_task(client):
    project = ProjectFactory()
    task = _open_task(project)
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    client.get(reverse("desk", args=[project.slug]))
    response = client.post(
        reverse("decide", args=[project.slug]), {"task": task.pk, "label": "giraffe"}, follow=True
    )
    assert "&#x27;giraffe&#x27; is not a label" in response.content.decode()
    assert not Outcome.objects.exists()
    assert reverse("item-image", args=[task.item_id]) in response.content.decode()


def test_unknown_project_is_a_404(client):
    client.force_login(RolloutAdminFactory())
    assert client.get(reverse("desk", args=["no-such-project"])).status_code == 404
