"""The one harness of the benchmarks and the fault tests (tests/resilience imports it; nothing
here imports tests).

- ``processes``: child processes in their own session, waiting helpers, free ports.
- ``servers``: throwaway PostgreSQL clusters and redis-servers; gunicorn and Celery commands.
- ``stack``: a running Handoff (web, worker, beat) on a private database and broker.
- ``client``: an HTTP client with a cookie jar, CSRF and an API token.
- ``database``: recreate, migrate, a throwaway test database, Django set up for a database.
- ``seeding``: projects, reviewers and models (import after ``django.setup()``).
- ``images``: small PNGs for uploads.
- ``docs``: the sections of docs/benchmarks.md and the command that produced them.
- ``machine`` and ``stats``: what the numbers came from, and how they are summarised.
- ``torch_bench``: the frame of the mlcore benchmarks (--threads, --write, their markdown).
- ``seed_stack``: ``python -m bench.harness.seed_stack`` seeds a ``Stack``'s database.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
