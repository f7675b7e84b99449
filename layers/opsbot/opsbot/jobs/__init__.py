"""Jobs: the one shape every piece of queued work takes, the queue, and the worker's dispatch."""
