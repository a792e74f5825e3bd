"""Entry point of ``asyncarch processor``: one Faust worker."""

from __future__ import annotations

from faust.worker import Worker

__all__ = ["main"]


def main() -> None:
    """Run the Faust app until SIGTERM/SIGINT."""
    from stream_processors.app import app, processor_settings

    processor_settings.data_dir.mkdir(parents=True, exist_ok=True)
    Worker(app, loglevel="INFO").execute_from_commandline()
