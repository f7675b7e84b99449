"""Release governance's scheduled side: the freeze announcements and the weekly delivery report (DORA). The rules
themselves (locks, freezes, overrides) are the authorization core's (authz/locks.py, authz/freezes.py)."""
