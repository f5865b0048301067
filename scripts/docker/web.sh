#!/usr/bin/env bash
set -euo pipefail
python manage.py migrate --noinput
# The beat entries (idempotent): demotion/promotion checks, the training reaper and retrain
# triggers, re-sending predictions the broker missed, drift checks of every project.
python manage.py beat_setup
# gthread workers keep browsers' connections alive between the desk's requests (bench/review_load.py).
exec gunicorn config.wsgi --bind 0.0.0.0:8000 --workers "${WEB_CONCURRENCY:-3}" --timeout 60 \
  --worker-class gthread --threads 4 --access-logfile -
