"""Log lines in vLLM's shapes, so a runbook's grep and the diagnoser read the simulator like vLLM.

vLLM writes ``INFO 11-23 11:00:00 [api_server.py:1885] message`` for its own lines and
uvicorn's ``INFO:     Application startup complete.`` for the server's; both go to stderr.
"""

from __future__ import annotations

import logging
import sys
import traceback

__all__ = ["exception_line", "logger", "server_logger", "setup_logging"]

logger = logging.getLogger("gameday.sim")
# Lines that uvicorn writes in a real vLLM (startup complete, shutdown, invalid requests);
# the simulator's own HTTP server writes them in uvicorn's format.
server_logger = logging.getLogger("gameday.sim.server")


class _UvicornStyle(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname + ':':<9} {record.getMessage()}"


def setup_logging() -> None:
    """Send the simulator's log lines to stderr in vLLM's format (idempotent)."""
    if getattr(setup_logging, "_done", False):
        return
    vllm_style = logging.StreamHandler(sys.stderr)
    vllm_style.setFormatter(
        logging.Formatter(
            "%(levelname)s %(asctime)s [%(filename)s:%(lineno)d] %(message)s",
            datefmt="%m-%d %H:%M:%S",
        )
    )
    logger.addHandler(vllm_style)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    uvicorn_style = logging.StreamHandler(sys.stderr)
    uvicorn_style.setFormatter(_UvicornStyle())
    server_logger.addHandler(uvicorn_style)
    server_logger.setLevel(logging.INFO)
    server_logger.propagate = False

    # uvicorn's own INFO lines would announce "startup complete" before the model is loaded.
    for name in ("uvicorn", "uvicorn.error"):
        uv = logging.getLogger(name)
        uv.handlers = [uvicorn_style]
        uv.setLevel(logging.WARNING)
        uv.propagate = False
    setup_logging._done = True  # type: ignore[attr-defined]


def exception_line(exc: BaseException) -> str:
    """The last line Python prints for ``exc``: ``OSError: [Errno 98] Address already in use``."""
    display = getattr(exc, "display_name", None)
    if isinstance(display, str):
        return f"{display}: {exc}"
    return "".join(traceback.format_exception_only(exc)).strip()
