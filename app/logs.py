"""Logging for PSL Studio's processes: stdlib ``logging``, one file per process role under
``$PSL_HOME/logs`` (e.g. ``worker.log``), lines carrying the run id, and the console for warnings
(everything with ``-v``).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

from app.settings import Settings

LOGGER_NAME = "psl"
FORMAT = "%(asctime)s %(levelname)-7s %(process)d %(name)s: %(message)s"
MAX_LOG_BYTES = 5 * 2**20  # rotate at 5 MiB, keep 3 old files: a busy worker never fills the disk
BACKUPS = 3


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def configure_logging(
    settings: Settings | None, *, verbose: bool = False, file_name: str | None = None
) -> None:
    """Console handler (WARNING, or DEBUG with ``verbose``) and, when ``file_name`` is given and the
    home is writable, a rotating file in ``settings.logs_dir``. Safe to call more than once."""
    root = get_logger()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(console)
    if file_name and settings is not None:
        try:
            settings.logs_dir.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                settings.logs_dir / file_name, maxBytes=MAX_LOG_BYTES, backupCount=BACKUPS, encoding="utf-8"
            )
        except OSError as err:  # a read-only home must not stop the process; say it once
            root.warning("no log file in %s: %s", settings.logs_dir, err)
            return
        handler.setLevel(settings.log_level)
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
