"""Quanzi (圈子): self-hosted community operations."""

__version__ = "0.1.0"
