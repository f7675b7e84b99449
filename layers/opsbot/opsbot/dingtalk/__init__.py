"""DingTalk: robot send (加签), callback signatures and (later) chat."""
