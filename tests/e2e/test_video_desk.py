"""A reviewer decides video clips in a real browser: the clip plays, its frame strip shows,
one key decides the whole clip."""

from __future__ import annotations

import pytest

from reviewapp import tasks
from reviewapp.demo import seed as demo
from reviewapp.intake import services
from reviewapp.models import Outcome, ReviewOrder, Stage
from reviewapp.rollout import versions
from tests.conftest import wait_for
from tests.video_support import digit_clip

pytestmark = pytest.mark.browser

PASSWORD = "a-long-demo-password-for-tests"


@pytest.fixture
def clip_desk(live_server, settings, tiny_artifact):
    """The demo project (supervised) with two predicted clips: an MP4, then a GIF."""
    settings.HANDOFF_DEMO_REVIEWER_PASSWORD = PASSWORD
    settings.HANDOFF_DEMO_ADMIN_PASSWORD = PASSWORD + "-admin"
    _, reviewer = demo.demo_users(lambda line: None)
    project = demo.demo_project(reviewer)
    project.stage = Stage.SUPERVISED
    project.review_order = ReviewOrder.FIFO  # the test walks the clips in arrival order
    project.save()
    versions.champion_register(project=project, artifact=tiny_artifact, reason="e2e")
    items = []
    for data, name in [
        (digit_clip([7] * 12), "trap-1.mp4"),
        (digit_clip([1, 2] * 6, extension="gif"), "trap-2.gif"),
    ]:
        item, _ = services.item_ingest(
            project=project, data=data, original_filename=name, enqueue_prediction=False
        )
        tasks.predict_item.run(item.pk)
        items.append(item)
    return project, items


def test_the_strip_shows_the_clip_plays_and_one_key_decides(page, live_server, clip_desk):
    project, (mp4, gif) = clip_desk
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "demo-reviewer")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Projects")
    page.goto(f"{live_server.url}/projects/{project.slug}/review/")

    page.wait_for_selector("#frame-strip li.frame")
    first = page.get_attribute("#item", "data-task")
    assert page.is_visible("#item-video") and not page.is_visible("#item-image")
    page.wait_for_function("document.getElementById('item-video').readyState >= 1")  # it loads
    assert page.locator("#frame-strip li.frame").count() == 8
    labels = page.locator("#frame-strip .frame-label").all_inner_texts()
    said = [f["label"] for f in mp4.predictions.get().frames]
    assert [text.split()[0] for text in labels] == said  # per-frame label and confidence
    page.wait_for_function(
        "Array.from(document.querySelectorAll('#frame-strip img'))"
        ".every(function (img) { return img.naturalWidth === 32; })"
    )

    page.keyboard.press("7")  # one key decides the whole clip
    page.wait_for_selector(f"#item:not([data-task='{first}'])", state="attached")
    assert wait_for(lambda: Outcome.objects.filter(item=mp4).first()).label == "7"

    # The GIF plays as an image; the strip is redrawn by the desk's script for the new task.
    page.wait_for_selector("#item-image:visible")
    assert not page.is_visible("#item-video")
    assert page.locator("#frame-strip li.frame").count() == 8
    page.wait_for_function("document.getElementById('item-image').naturalWidth === 32")
    page.keyboard.press("x")
    page.wait_for_selector("#queue-empty")
    assert wait_for(lambda: Outcome.objects.filter(item=gif).first()).is_out_of_domain
    assert Outcome.objects.filter(item__project=project).count() == 2
