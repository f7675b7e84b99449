"""Ingress: every webhook enters here, is verified once, and becomes one job on the queue."""
