"""Accounts: the two roles (reviewers, rollout admins) and who may see and change which project."""
