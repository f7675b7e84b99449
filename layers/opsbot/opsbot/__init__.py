"""opsbot's shared layer: all logic behind the thin Lambda handlers in functions/.

Split by integration (drone, dingtalk, gitlab) and by capability (ingress, jobs, notify, config, state).
Modules import only what their path needs so that each function's cold start stays small.
"""
