"""Site: pages that span domains, ops endpoints (health, metrics), error pages."""
