"""sharing models."""
