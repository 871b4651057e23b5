"""The ``llmrelay`` command line: chat, ask, batch, models, a mock server and a demo.

Needs the ``cli`` extra (click, rich, uvicorn): ``pip install "llmrelay[cli]"``. Run
``llmrelay --help``, or start with ``llmrelay demo`` (no key, no network).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

INSTALL_HINT = 'pip install "llmrelay[cli]"'


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``llmrelay`` script (and ``python -m llmrelay.cli``)."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError as exc:
        sys.stderr.write(
            f"llmrelay: the command line needs the 'cli' extra ({exc.name} is not installed).\n"
            f"Install it with:  {INSTALL_HINT}\n"
        )
        raise SystemExit(2) from None
    from ._app import cli

    cli.main(args=list(argv) if argv is not None else None, prog_name="llmrelay")


__all__ = ["main"]
