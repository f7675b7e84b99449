"""GitOps: the config repo synced from GitLab pushes (config_sync), .drone.yml generated from language templates
(pipelines, templates/) and delivered as merge requests (merge_requests); jobs routes GitLab pushes to them."""
