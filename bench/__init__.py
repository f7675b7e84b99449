"""`make bench`: cold-start and ingress-latency ratios against floors measured in the same run (bench/run.py)."""
