"""The demo community: a deterministic simulated brand's group portfolio, as events."""

from quanzi.demo.generator import DemoSpec, estimate_events, generate, generate_lines

__all__ = ["DemoSpec", "estimate_events", "generate", "generate_lines"]
