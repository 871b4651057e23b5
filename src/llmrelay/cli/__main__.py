"""``python -m llmrelay.cli``: the same as the ``llmrelay`` script."""

from __future__ import annotations

from . import main

main()
