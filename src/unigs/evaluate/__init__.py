"""Metrics and the `unigs eval` command."""
