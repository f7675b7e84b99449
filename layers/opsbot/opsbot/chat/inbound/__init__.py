"""Where chat messages come in: one module per chat platform, each verifying its callbacks once and handing the
message to chat.ingress."""
