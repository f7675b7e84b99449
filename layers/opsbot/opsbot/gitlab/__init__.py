"""GitLab: webhook token and events; the REST client arrives with the GitOps issue."""
