"""Rollout: policy, routing and statistics; stages, gates and shares; model versions and aliases."""
