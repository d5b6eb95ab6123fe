"""Porpoise's own tables."""
