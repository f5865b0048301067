"""factory_boy factories for the domain models."""

from __future__ import annotations

import hashlib
import io

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image

from reviewapp.accounts.services import groups_ensure
from reviewapp.models import (
    Item,
    ItemOrigin,
    ModelVersion,
    Prediction,
    Project,
    ReviewReason,
    ReviewTask,
)


def png_bytes(seed: int = 0, size: int = 16) -> bytes:
    """A small, valid, unique PNG."""
    image = Image.new("RGB", (size, size), color=(seed % 256, (seed * 7) % 256, (seed * 13) % 256))
    image.putpixel((0, 0), ((seed // 256) % 256, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")


class ReviewerFactory(UserFactory):
    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        reviewers, _ = groups_ensure()
        self.groups.add(reviewers)


class RolloutAdminFactory(UserFactory):
    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        _, admins = groups_ensure()
        self.groups.add(admins)


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.Sequence(lambda n: f"Project {n}")
    labels = factory.LazyFunction(lambda: [str(d) for d in range(10)])


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    project = factory.SubFactory(ProjectFactory)
    origin = ItemOrigin.UPLOAD
    width = 16
    height = 16
    image_format = "png"

    @factory.lazy_attribute_sequence
    def sha256(self, n):
        return hashlib.sha256(png_bytes(n)).hexdigest()

    @factory.lazy_attribute
    def key(self):
        return self.sha256

    @factory.lazy_attribute_sequence
    def image(self, n):
        return ContentFile(png_bytes(n), name=f"{n}.png")


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    project = factory.SubFactory(ProjectFactory)
    number = factory.Sequence(lambda n: n + 1)
    artifact_path = "/nonexistent"
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    architecture = "resnet18"
    labels = factory.LazyFunction(lambda: [str(d) for d in range(10)])
    input_size = 32
    resize_method = "squish"


class PredictionFactory(factory.django.DjangoModelFactory):
    """A stored prediction; probabilities follow the label and confidence."""

    class Meta:
        model = Prediction

    item = factory.SubFactory(ItemFactory)
    model_version = factory.SubFactory(
        ModelVersionFactory, project=factory.SelfAttribute("..item.project")
    )
    label = "3"
    confidence = 0.8
    ood_score = 0.0
    latency_ms = 1.0

    @factory.lazy_attribute
    def probabilities(self):
        return {self.label: self.confidence}


class ReviewTaskFactory(factory.django.DjangoModelFactory):
    """An open shadow-stage task with its prediction."""

    class Meta:
        model = ReviewTask

    prediction = factory.SubFactory(PredictionFactory)
    item = factory.SelfAttribute("prediction.item")
    project = factory.SelfAttribute("prediction.item.project")
    reason = ReviewReason.SHADOW
    priority = 20
