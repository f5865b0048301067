"""The REST API for machine clients (issue 7): /api/v1/, token-authenticated, scoped to projects."""
