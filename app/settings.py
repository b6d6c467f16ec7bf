"""Where PSL Studio keeps things, resolved in ONE place from the environment.

| variable            | default                         | what                                         |
|---------------------|---------------------------------|----------------------------------------------|
| PSL_HOME            | ~/.psl-studio                   | database, checkpoints, logs, caches          |
| PSL_DATABASE_URL    | sqlite:///$PSL_HOME/psl.db      | any SQLAlchemy URL (postgresql+psycopg://…)  |
| PSL_DATA_DIR        | (none)                          | extra folder searched for dataset files      |
| PSL_LOG_LEVEL       | INFO                            | level of the log files in $PSL_HOME/logs     |

Every value has ``~`` expanded and relative paths made absolute here, so a worker started from
another folder sees the same home as the process that started it. Nothing here creates folders:
read-only commands must work on a read-only home; writers call :func:`ensure_home`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "PSL_HOME"
DATABASE_ENV = "PSL_DATABASE_URL"
DATA_DIR_ENV = "PSL_DATA_DIR"
LOG_LEVEL_ENV = "PSL_LOG_LEVEL"
DEFAULT_HOME = "~/.psl-studio"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingsError(ValueError):
    """An environment variable holds a value PSL Studio cannot use; the message says which and why."""


def _path(raw: str) -> Path:
    return Path(os.path.expandvars(raw)).expanduser().absolute()


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    data_dir: Path | None
    log_level: str

    @property
    def checkpoints_dir(self) -> Path:
        return self.home / "checkpoints"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def worker_log(self) -> Path:
        return self.logs_dir / "worker.log"

    def checkpoint_dir_of(self, run_id: int) -> Path:
        return self.checkpoints_dir / str(run_id)

    def as_env(self) -> dict[str, str]:
        """The variables a child process needs to resolve exactly these settings."""
        env = {HOME_ENV: str(self.home), DATABASE_ENV: self.database_url, LOG_LEVEL_ENV: self.log_level}
        if self.data_dir is not None:
            env[DATA_DIR_ENV] = str(self.data_dir)
        return env


def get_settings(environ: dict[str, str] | None = None) -> Settings:
    """Resolve the settings from ``environ`` (default: ``os.environ``); cheap, so call it when needed."""
    env = os.environ if environ is None else environ
    home = _path(env.get(HOME_ENV, "").strip() or DEFAULT_HOME)
    url = env.get(DATABASE_ENV, "").strip() or f"sqlite:///{home / 'psl.db'}"
    data_raw = env.get(DATA_DIR_ENV, "").strip()
    level = (env.get(LOG_LEVEL_ENV, "").strip() or "INFO").upper()
    if level not in LOG_LEVELS:
        raise SettingsError(
            f"{LOG_LEVEL_ENV}={level!r} is not a log level; use one of {', '.join(LOG_LEVELS)}"
        )
    return Settings(
        home=home, database_url=url, data_dir=_path(data_raw) if data_raw else None, log_level=level
    )


def ensure_home(settings: Settings) -> Settings:
    """Create the home and its folders (for commands that write); a clear error if it is not writable."""
    try:
        for folder in (settings.home, settings.checkpoints_dir, settings.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SettingsError(
            f"cannot create {HOME_ENV} folders under {settings.home} ({err.strerror or err}); "
            f"set {HOME_ENV} to a writable folder"
        ) from None
    return settings


def configure_core(settings: Settings) -> None:
    """Tell psl_core where datasets and caches are (psl_core itself never reads the environment)."""
    from psl_core.data import configure_data_paths

    extra = [settings.data_dir] if settings.data_dir is not None else []
    cache = settings.cache_dir if os.access(settings.home, os.W_OK) or not settings.home.exists() else None
    configure_data_paths(data_dirs=extra, cache_dir=cache)
