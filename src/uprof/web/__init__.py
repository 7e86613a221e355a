"""Hosted pages an end user opens from an enrollment or action URL."""
