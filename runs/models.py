"""Runs, their slots and statistics arrive with the run engine."""
