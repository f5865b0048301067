"""Clips end to end: web upload → sampled frames → one forward for the frames → the clip's
aggregated decision → the desk's strip → one decision → one Outcome for the clip."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from reviewapp import ml
from reviewapp.intake import batching, media
from reviewapp.models import Item, ItemKind, Outcome, Prediction, ReviewReason, Stage
from reviewapp.rollout import versions
from tests.factories import ReviewerFactory, RolloutAdminFactory
from tests.video_support import digit_clip, digit_frame, noise_clip

pytestmark = pytest.mark.django_db


def _upload(client, project, data: bytes, name: str) -> Item:
    client.force_login(RolloutAdminFactory())
    upload = SimpleUploadedFile(name, data, content_type="video/mp4")
    response = client.post(reverse("upload", args=[project.slug]), {"images": [upload]})
    assert response.status_code == 302
    return Item.objects.get(project=project, original_filename=name)


def _predict(item: Item) -> Prediction:
    assert batching.items_predict(item_ids=[item.pk]).predicted == [item.pk]
    return Prediction.objects.get(item=item)


def _frame_results(item: Item) -> list[ml.PredictionResult]:
    """The champion on the clip's stored frames, predicted here independently."""
    champion = versions.champion_of(item.project)
    images = []
    for name in item.frame_names:
        with default_storage.open(name, "rb") as handle:
            images.append(ml.load_image(handle))
    return ml.predict_images(
        artifact_path=champion.artifact_path, sha256=champion.sha256, images=images
    )


def _model_labels(project) -> dict[int, str]:
    champion = versions.champion_of(project)
    results = ml.predict_images(
        artifact_path=champion.artifact_path,
        sha256=champion.sha256,
        images=[digit_frame(d) for d in range(10)],
    )
    return {digit: r.label for digit, r in enumerate(results)}


def _two_digits_the_model_tells_apart(project) -> tuple[int, int]:
    labels = _model_labels(project)
    outer = max(labels, key=lambda d: list(labels.values()).count(labels[d]))
    middle = next(d for d in labels if labels[d] != labels[outer])
    return outer, middle


def test_a_clip_of_one_digit_is_one_item_one_prediction_and_one_outcome(client, champion_project):
    project = champion_project
    project.stage = Stage.SUPERVISED
    project.save()
    item = _upload(client, project, digit_clip([7] * 12), "trap-0001.mp4")
    assert item.kind == ItemKind.CLIP and len(item.frame_names) == 8
    prediction = _predict(item)
    frames = _frame_results(item)
    # Each frame was predicted; the clip's label is the arg-max of the mean frame probabilities.
    assert [f["label"] for f in prediction.frames] == [r.label for r in frames]
    mean = {k: np.mean([r.probabilities[k] for r in frames]) for k in project.labels}
    assert prediction.label == max(mean, key=mean.get)
    assert prediction.confidence == pytest.approx(mean[prediction.label], abs=1e-5)
    assert len({f["label"] for f in prediction.frames}) == 1  # the same digit in every frame
    # The desk: a strip of the 8 frames with the model's label per frame, and the clip playable.
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    task = client.get(reverse("desk-next", args=[project.slug])).json()["task"]
    assert task["item_id"] == item.pk and task["clip"]["playable"] is True
    assert [f.get("label") for f in task["clip"]["frames"]] == [r.label for r in frames]
    video = client.get(task["image_url"])
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"
    frame = client.get(task["clip"]["frames"][3]["url"])
    assert frame.status_code == 200 and frame["Content-Type"] == "image/png"
    page = client.get(reverse("desk", args=[project.slug])).content.decode()
    assert 'id="frame-strip"' in page and page.count('class="frame-label"') == 8
    # One decision for the clip: one Outcome, counted once by rollout and audit.
    response = client.post(
        reverse("desk-decide", args=[project.slug]),
        {"task": task["id"], "label": "7", "duration_ms": 900, "held": task["id"]},
    )
    assert response.status_code == 200, response.content
    assert Outcome.objects.get(item=item).label == "7"
    assert Outcome.objects.filter(item__project=project).count() == 1


def test_middle_frames_of_another_digit_follow_the_mean_or_raise_a_priority_alert(
    client, champion_project
):
    project = champion_project
    outer, middle = _two_digits_the_model_tells_apart(project)
    labels = _model_labels(project)
    digits = [outer] * 4 + [middle] * 4 + [outer] * 4  # frames 4..7 show the other digit
    item = _upload(client, project, digit_clip(digits), "trap-0002.mp4")
    prediction = _predict(item)
    shown = [digits[f["index"]] for f in item.clip["frames"]]
    assert shown.count(middle) == 2  # TSN picks frames 0 2 3 5 6 8 9 11 of 12
    assert [f["label"] for f in prediction.frames] == [labels[d] for d in shown]
    frames = _frame_results(item)
    mean = {k: np.mean([r.probabilities[k] for r in frames]) for k in project.labels}
    assert prediction.label == max(mean, key=mean.get)
    # The same clip once the middle digit's label is a priority label: an alert.
    project.priority_labels = [labels[middle]]
    project.save()
    item = _upload(
        client,
        project,
        digit_clip([outer] * 4 + [middle] * 4 + [outer] * 4, extension="webm"),
        "trap-0003.webm",
    )
    prediction = _predict(item)
    frames = _frame_results(item)
    assert prediction.label == labels[middle]
    assert prediction.confidence == pytest.approx(
        max(r.probabilities[labels[middle]] for r in frames), abs=1e-5
    )
    assert item.tasks.get().reason == ReviewReason.PRIORITY


def test_a_clip_of_noise_is_out_of_domain_and_its_frame_labels_stay_hidden_in_shadow(
    client, champion_project
):
    project = champion_project  # the shadow stage: suggestions are hidden
    item = _upload(client, project, noise_clip(16, extension="webm"), "static.webm")
    prediction = _predict(item)
    assert sum(f["is_ood"] for f in prediction.frames) * 2 > len(prediction.frames)
    assert prediction.is_ood is True
    reviewer = ReviewerFactory()
    project.reviewers.add(reviewer)
    client.force_login(reviewer)
    page = client.get(reverse("desk", args=[project.slug])).content.decode()
    assert page.count('<li class="frame">') == 8 and "frame-label" not in page.split("<script")[0]
    decided = client.post(
        reverse("decide", args=[project.slug]), {"task": item.tasks.get().pk, "verdict": "ood"}
    )
    assert decided.status_code == 302
    assert Outcome.objects.get(item=item).is_out_of_domain


def test_frames_are_access_checked_like_the_item_image(client, champion_project):
    item = _upload(client, champion_project, digit_clip([1] * 10, extension="gif"), "a.gif")
    url = reverse("item-frame", args=[item.pk, 0])
    client.force_login(ReviewerFactory())  # not a reviewer of this project
    assert client.get(url).status_code in (403, 404)
    client.logout()
    assert client.get(url).status_code == 302


def test_a_still_of_a_clip_is_its_middle_frame_so_thumbnails_show_clips(client, champion_project):
    item = _upload(client, champion_project, digit_clip([2] * 12), "still.mp4")
    url = reverse("item-image", args=[item.pk])
    clip = client.get(url)
    assert clip["Content-Type"] != "image/png"  # the clip itself, for the desk's player
    still = client.get(url + "?still=1")
    assert still.status_code == 200 and still["Content-Type"] == "image/png"
    middle = item.frame_names[len(item.frame_names) // 2]
    with default_storage.open(middle, "rb") as handle:
        assert b"".join(still.streaming_content) == handle.read()


def test_ingest_folder_takes_clips_and_media_check_knows_their_frames(tmp_path, champion_project):
    (tmp_path / "cam").mkdir()
    (tmp_path / "cam" / "a.mp4").write_bytes(digit_clip([2] * 10))
    (tmp_path / "cam" / "b.webm").write_bytes(digit_clip([3] * 10, extension="webm"))
    (tmp_path / "cam" / "c.mp4").write_bytes(b"not a video")
    call_command("ingest_folder", str(tmp_path), project=champion_project.slug)
    clips = Item.objects.filter(project=champion_project, kind=ItemKind.CLIP)
    assert sorted(clips.values_list("image_format", flat=True)) == ["mp4", "webm"]
    report = media.media_check(min_age_seconds=0)
    ours = {clip.image.name for clip in clips} | {n for clip in clips for n in clip.frame_names}
    assert len(ours) == 2 + 2 * 8
    assert not ours & set(report.orphan_files)
    assert not [name for pk, name in report.missing_files if name in ours]
