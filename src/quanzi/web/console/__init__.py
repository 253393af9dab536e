"""The operator console: server-rendered pages on the services (FastAPI + Jinja2)."""
