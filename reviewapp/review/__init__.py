"""Review: queues, claim/decide/undo, double review, adjudication, the Outcome writer, webhooks."""
