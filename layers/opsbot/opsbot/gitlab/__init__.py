"""GitLab: the webhook (token, events, dedupe) and the REST client (python-gitlab, loaded only where used)."""
