"""targets models."""
