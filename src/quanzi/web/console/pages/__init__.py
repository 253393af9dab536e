"""Console page modules; each exposes `router` and is included by the app (see app.py)."""
