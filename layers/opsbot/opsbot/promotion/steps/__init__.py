"""Every release step; importing this package registers them all in promotion.registry.STEPS (one module each)."""

from __future__ import annotations

from opsbot.promotion.steps import (  # noqa: F401
    apply_argocd,
    apply_flux,
    apply_opsbot,
    apply_runbook,
    apply_watch,
    auto_rollback,
    git_commit,
    git_revert,
    merge_merge_request,
    open_merge_request,
    report,
    set_image,
    verify_alarm,
    verify_http,
)
