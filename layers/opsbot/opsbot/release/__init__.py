"""Releasing builds: the rules an environment sets, Drone promote/rollback, and approvals for production."""
