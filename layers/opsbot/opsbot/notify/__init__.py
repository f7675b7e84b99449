"""Build notifications: when to tell (policy), what to say (render), and how to deliver within budget."""
