"""Connectors: each platform speaks events in (webhooks, sync, imports) and carries out actions."""
