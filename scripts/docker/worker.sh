#!/usr/bin/env bash
set -euo pipefail
exec celery -A config worker -Q default -n "default@%h" --concurrency "${WORKER_CONCURRENCY:-2}" \
  --loglevel "${LOG_LEVEL:-INFO}"
