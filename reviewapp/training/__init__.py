"""Training: frozen snapshots, training runs and their triggers, candidate evaluation."""
