"""GitOps releases: a release as a list of small named steps (Kargo's promotion steps), from a commit in the deploy
repo to its rollout, verification and report."""
