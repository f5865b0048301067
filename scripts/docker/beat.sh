#!/usr/bin/env bash
set -euo pipefail
exec celery -A config beat --loglevel "${LOG_LEVEL:-INFO}" \
  --scheduler django_celery_beat.schedulers:DatabaseScheduler
