"""Ops from chat: Kubernetes, VM batches through SSM Run Command, and DNS through Route 53, on the targets the config
names (config/ops.py). A change is previewed, confirmed by its requester, approved where the environment says so,
made once, followed up by delayed jobs, and audited at every step. No free-form shell or kubectl: every argument
is typed and checked against the config before anything runs."""
