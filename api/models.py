"""api models (issue 5)."""
