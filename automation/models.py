"""automation models (issue 5)."""
