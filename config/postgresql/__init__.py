"""Django's PostgreSQL backend, its per-request health check without a round trip (see base)."""
