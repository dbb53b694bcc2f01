"""The loops of the processes the master forks (one module per role)."""
