"""Delivery: how a message reaches a group, in one pass that this package owns: the robot's budget, or a fold
into its digest, the send, and exactly once per key. Every capability that has news hands it a message here."""
