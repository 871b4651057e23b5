"""Stage tests run on trio's MockClock: `anyio.sleep` and `anyio.current_time` use virtual time
that jumps as soon as every task sleeps, so waits are measured exactly and cost nothing."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    import trio.testing

    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
