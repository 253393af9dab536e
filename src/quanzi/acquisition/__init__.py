"""Acquisition: channel codes, landing pages and leads, share posters, invite tracking and fraud review."""
