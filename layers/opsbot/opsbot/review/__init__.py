"""Merge-request automation for GitLab, after Prow's k8s-ci-robot: size and path labels (labels.py), reviewers
from OWNERS (owners.py, reviewers.py), slash commands in comments (commands.py), merge when ready (tide.py),
wired to GitLab's hooks in jobs.py. Opt-in per project with `review: {enabled: true}`."""
