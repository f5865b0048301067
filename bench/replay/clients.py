"""The replay's clients, all over HTTP: the API client that streams images, the simulated
reviewers on the desk's JSON endpoints, and the rollout admin who acts on what the pages show.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field

from bench.harness.client import Http

logger = logging.getLogger(__name__)


def submit_item(*, port: int, slug: str, token: str, key: str, png: bytes) -> int:
    """POST one image to the REST API (multipart, Bearer token); returns the item id."""
    status, body = Http(port, token=token).submit(slug, png, key=key, name=f"{key}.png")
    if status not in (200, 201, 202):
        raise RuntimeError(f"submit {key}: HTTP {status} {body!r:.200}")
    return int(body["id"])


@dataclass
class ReviewerStats:
    """What one simulated reviewer did."""

    decisions: int = 0
    wrong: int = 0
    errors: list[str] = field(default_factory=list)


class Reviewer(threading.Thread):
    """A simulated reviewer: claim, look for `think` seconds, answer right with `accuracy`
    (an item whose truth is none of the labels is marked out of domain)."""

    def __init__(
        self,
        *,
        port: int,
        slug: str,
        username: str,
        password: str,
        truth: dict[int, str],
        labels: list[str],
        accuracy: float,
        think: float,
        seed: int,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=username, daemon=True)
        self.http, self.slug, self.username, self.password = Http(port), slug, username, password
        self.truth, self.labels, self.accuracy, self.think = truth, labels, accuracy, think
        self.rng, self.stop_event, self.stats = random.Random(seed), stop, ReviewerStats()

    def _answer(self, item_id: int) -> str:
        deadline = time.monotonic() + 30
        while item_id not in self.truth and time.monotonic() < deadline:
            time.sleep(0.05)  # the streamer records the id when its POST returns
        truth = self.truth[item_id]
        if self.rng.random() < self.accuracy:
            return truth
        self.stats.wrong += 1
        return self.rng.choice([label for label in self.labels if label != truth])

    def _claim(self) -> dict | None:
        status, body, _ = self.http.request("GET", f"/projects/{self.slug}/review/next.json")
        return json.loads(body)["task"] if status == 200 else None

    def run(self) -> None:
        self.http.log_in(self.username, self.password)
        task = None
        while not self.stop_event.is_set():
            if task is None:
                task = self._claim()
                if task is None:
                    time.sleep(0.5)
                    continue
            time.sleep(self.think)
            label = self._answer(task["item_id"])
            in_domain = label in self.labels  # else the truth is "not one of the classes"
            form = {
                "task": task["id"],
                "verdict": "correct" if in_domain else "ood",
                "label": label if in_domain else "",
                "duration_ms": int(self.think * 1000),
                "held": task["id"],
            }
            status, body, _ = self.http.post_form(f"/projects/{self.slug}/review/decide.json", form)
            if status == 200:
                self.stats.decisions += 1
                task = json.loads(body)["next"]
            else:
                self.stats.errors.append(f"decide {status}: {body[:160]!r}")
                task = None


class RolloutAdmin(threading.Thread):
    """The rollout admin of arm (c): reads the rollout pages' state and clicks what a careful
    admin would, over HTTP: a 50% traffic share when a promotion reaches partial, each new
    trained model entered as challenger, and the challenger promoted once its gate passes."""

    def __init__(
        self,
        *,
        port: int,
        slug: str,
        project_id: int,
        username: str,
        password: str,
        stop: threading.Event,
        every: float = 2.0,
    ) -> None:
        super().__init__(name=username, daemon=True)
        self.http, self.slug, self.project_id = Http(port), slug, project_id
        self.username, self.password, self.stop_event, self.every = username, password, stop, every
        self.actions: list[dict] = []
        self.handled: set[int] = set()

    def _post(self, path: str, form: dict, what: str) -> None:
        status, body, _ = self.http.post_form(f"/projects/{self.slug}/rollout/{path}", form)
        self.actions.append({"at": time.time(), "what": what, "status": status})
        if status not in (200, 302):
            logger.warning("replay.admin.refused %s: HTTP %s %r", what, status, body[:160])

    def _act(self) -> None:
        from reviewapp.models import ModelVersion, Project, RunState
        from reviewapp.rollout import selectors as rollout_selectors
        from reviewapp.rollout import services as rollout
        from reviewapp.rollout import versions

        project = Project.objects.get(pk=self.project_id)
        promoted_here = rollout_selectors.last_automatic_demotion(project=project) is None
        if project.stage == "partial" and project.traffic_share == 0 and promoted_here:
            self._post(
                "traffic/",
                {"percent": 50, "reason": "gate passed: half of traffic"},
                "traffic share 50%",
            )
        champion, challenger = versions.champion_of(project), rollout.challenger_of(project)
        fresh = (
            ModelVersion.objects.filter(project=project, training_run__state=RunState.SUCCEEDED)
            .exclude(pk__in=self.handled)
            .order_by("-number")
            .first()
        )
        if fresh is not None and fresh != champion and fresh != challenger:
            self.handled.add(fresh.pk)
            self._post(
                "challenger/set/",
                {"model_version": fresh.number, "reason": "new model from retraining"},
                f"v{fresh.number} challenger",
            )
        elif (
            challenger is not None
            and rollout_selectors.challenger_gate(project=project, challenger=challenger).passed
        ):
            self._post(
                "challenger/promote/",
                {"reason": "challenger gate passed"},
                f"v{challenger.number} champion",
            )

    def run(self) -> None:
        from django.db import connection

        self.http.log_in(self.username, self.password)
        try:
            while not self.stop_event.wait(self.every):
                try:
                    self._act()
                except Exception:  # noqa: BLE001 - the admin retries on the next look
                    logger.exception("replay.admin.failed")
        finally:
            connection.close()
