"""Media disk full (ENOSPC) or read-only (EROFS), for real on a small tmpfs mounted over the
media folder: the client gets a clear 507, nothing is half stored, and writes resume after."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from bench.harness.images import png


@pytest.fixture
def small_media(stack):
    """A 256 KiB tmpfs mounted on the stack's media folder (needs root / CAP_SYS_ADMIN)."""
    stack.media.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(stack.media)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"RESILIENCE TEST SKIPPED: cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield stack.media
    finally:
        subprocess.run(["umount", "-l", str(stack.media)], check=False)


def _fill(folder) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def _remount(folder, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def _stored(stack, media) -> tuple[int, list[str]]:
    files = sorted(p.name for p in media.rglob("*") if p.is_file() and p.name != "filler")
    return stack.scalar("SELECT count(*) FROM reviewapp_item"), files


def test_full_or_read_only_media_gives_507_and_stores_nothing(stack, small_media, artifact_spec):
    seeded = stack.seed({"artifact": artifact_spec})
    slug = seeded["slug"]
    stack.start_web(workers=1)
    api, admin = stack.http(), stack.http()
    api.token = seeded["token"]
    admin.log_in(seeded["admin"], seeded["password"])

    _fill(small_media)
    status, body = api.submit(slug, png(1), key="k1")
    assert status == 507 and "disk is full" in body["error"]["message"], body
    status, page, _ = admin.post_files(f"/projects/{slug}/upload/", "images", [("a.png", png(2))])
    assert status == 507 and b"disk is full" in page
    assert _stored(stack, small_media) == (0, [])

    (small_media / "filler").unlink()
    _remount(small_media, "ro")
    status, body = api.submit(slug, png(1), key="k1")
    assert status == 507 and "read-only" in body["error"]["message"], body
    assert _stored(stack, small_media) == (0, [])

    _remount(small_media, "rw")  # the operator fixes the disk: no restart needed
    status, body = api.submit(slug, png(1), key="k1")
    assert status == 202, body
    count, files = _stored(stack, small_media)
    assert count == 1 and len(files) == 1 and not files[0].startswith(".")
