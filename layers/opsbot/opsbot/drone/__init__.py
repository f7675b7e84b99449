"""Drone CI: webhook signatures, build events and (later) the REST API client."""
