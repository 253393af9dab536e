"""Fixtures of the console's analytics tests."""

from __future__ import annotations

import pytest
from community import Community
from scoped_community import build_three_groups
from sqlalchemy import Engine


@pytest.fixture
def three_groups(engine: Engine) -> Community:
    """See scoped_community.build_three_groups."""
    return build_three_groups(engine)
