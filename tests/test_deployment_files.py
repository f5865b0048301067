"""The production files stay consistent: compose services, start scripts, env documented."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_has_every_service_on_one_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "worker-training", "beat"}
    app_images = {services[name]["image"] for name in ("web", "worker", "worker-training", "beat")}
    assert app_images == {"handoff:latest"}
    gpu = services["worker-training"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    for name in ("web", "worker", "worker-training", "beat"):
        script = ROOT / services[name]["command"][1]
        text = script.read_text()
        assert "set -euo pipefail" in text and "\nexec " in text, script


def test_training_worker_runs_one_task_at_a_time():
    text = (ROOT / "scripts/docker/worker-training.sh").read_text()
    assert "-Q training" in text and "--concurrency 1" in text
    assert "--prefetch-multiplier 1" in text


def test_every_setting_read_from_the_environment_is_documented():
    settings_text = (ROOT / "config/settings.py").read_text()
    names = set(
        re.findall(r"""(?:os\.environ\.get|env_bool|env_list)\(\s*"([A-Z_]+)\"""", settings_text)
    )
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    assert names, "no environment variables found: the pattern is stale"
    assert sorted(n for n in names if f"`{n}`" not in readme) == []
    undocumented = {"HANDOFF_VAR_DIR", "HANDOFF_BROKER_DIR", "STATIC_ROOT", "DB_CONN_MAX_AGE"}
    undocumented |= {"SESSION_COOKIE_AGE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS"}
    undocumented |= {"SECURE_HSTS_PRELOAD", "DB_PREPARE_THRESHOLD"}
    assert sorted(n for n in names - undocumented if f"{n}=" not in example) == []


def test_web_and_workers_have_healthchecks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["web"]["healthcheck"]["test"][-1] == "/readyz"
    for name in ("worker", "worker-training"):
        assert services[name]["healthcheck"]["test"][-1] == "worker_ready"
        assert services[name]["environment"]["HANDOFF_WORKER_HEARTBEAT_FILE"].startswith("/tmp/")
    assert (ROOT / "scripts/docker/probe.py").exists()
