"""ChatOps: @opsbot messages from DingTalk, parsed, checked and answered by commands from one registry."""
