"""Short-lived state in the state table: idempotency records, robot budgets, branch status."""
