"""Argo CD's API: syncing an Application and reading its sync and health (GitOps releases, `apply: argocd`)."""
