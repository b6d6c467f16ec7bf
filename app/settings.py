"""Where PSL Studio keeps things, resolved in ONE place from the environment.

| variable            | default                         | what                                         |
|---------------------|---------------------------------|----------------------------------------------|
| PSL_HOME            | ~/.psl-studio                   | database, checkpoints, logs, caches          |
| PSL_DATABASE_URL    | sqlite:///$PSL_HOME/psl.db      | any SQLAlchemy URL (postgresql+psycopg://…)  |
| PSL_CHECKPOINT_URL  | $PSL_HOME/checkpoints           | where checkpoints live: a folder every host  |
|                     |                                 | mounts, or an fsspec URL (s3://bucket/ckpt)  |
| PSL_DATA_DIR        | (none)                          | extra folder searched for dataset files      |
| PSL_LOG_LEVEL       | INFO                            | level of the log files in $PSL_HOME/logs     |
| PSL_KEEP_CHECKPOINTS| 3                               | checkpoints kept per run (older ones deleted)|

Every value has ``~`` expanded and relative paths made absolute here, so a worker started from
another folder sees the same home as the process that started it. Nothing here creates folders:
read-only commands must work on a read-only home; writers call :func:`ensure_home`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "PSL_HOME"
DATABASE_ENV = "PSL_DATABASE_URL"
DATA_DIR_ENV = "PSL_DATA_DIR"
CHECKPOINT_ENV = "PSL_CHECKPOINT_URL"
LOG_LEVEL_ENV = "PSL_LOG_LEVEL"
KEEP_CHECKPOINTS_ENV = "PSL_KEEP_CHECKPOINTS"
DEFAULT_KEEP_CHECKPOINTS = 3  # the newest is what a resume needs; two more in case it is torn
MAX_KEEP_CHECKPOINTS = 1000
DEFAULT_HOME = "~/.psl-studio"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingsError(ValueError):
    """An environment variable holds a value PSL Studio cannot use; the message says which and why."""


def _path(raw: str) -> Path:
    return Path(os.path.expandvars(raw)).expanduser().absolute()


def _checkpoint_url(raw: str, home: Path) -> str:
    """A folder (``file://`` or a plain path, made absolute) or a URL with another scheme, as given."""
    if not raw:
        return str(home / "checkpoints")
    scheme, sep, rest = raw.partition("://")
    if not sep:
        return str(_path(raw))
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) or not rest.strip("/"):
        raise SettingsError(
            f"{CHECKPOINT_ENV}={raw!r} is neither a folder nor a URL like s3://bucket/checkpoints; "
            "set it to a folder every worker host can read and write, or to an fsspec URL"
        )
    if scheme.lower() == "file":
        return str(_path(rest if rest.startswith("/") else "/" + rest))
    return raw.rstrip("/")


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    data_dir: Path | None
    log_level: str
    checkpoint_url: str  # an absolute folder, or a URL with a scheme (e.g. s3://bucket/ckpt)
    keep_checkpoints: int = DEFAULT_KEEP_CHECKPOINTS

    @property
    def checkpoints_dir(self) -> Path | None:
        """The checkpoint folder when checkpoints live in a (possibly shared) folder; None for a URL."""
        return None if "://" in self.checkpoint_url else Path(self.checkpoint_url)

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def worker_log(self) -> Path:
        return self.logs_dir / "worker.log"

    def as_env(self) -> dict[str, str]:
        """The variables a child process (or a Ray task) needs to resolve exactly these settings."""
        env = {
            HOME_ENV: str(self.home),
            DATABASE_ENV: self.database_url,
            LOG_LEVEL_ENV: self.log_level,
            CHECKPOINT_ENV: self.checkpoint_url,
            KEEP_CHECKPOINTS_ENV: str(self.keep_checkpoints),
        }
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
    keep_raw = env.get(KEEP_CHECKPOINTS_ENV, "").strip() or str(DEFAULT_KEEP_CHECKPOINTS)
    if not (keep_raw.isdigit() and len(keep_raw) <= 6 and 1 <= int(keep_raw) <= MAX_KEEP_CHECKPOINTS):
        raise SettingsError(
            f"{KEEP_CHECKPOINTS_ENV}={keep_raw[:40]!r} is not a whole number from 1 to {MAX_KEEP_CHECKPOINTS} "
            "(how many checkpoints to keep per run)"
        )
    return Settings(
        home=home,
        database_url=url,
        data_dir=_path(data_raw) if data_raw else None,
        log_level=level,
        checkpoint_url=_checkpoint_url(env.get(CHECKPOINT_ENV, "").strip(), home),
        keep_checkpoints=int(keep_raw),
    )


def home_is_writable(settings: Settings) -> bool:
    """True if the home (or, before it exists, its nearest existing parent) accepts new files.

    ``os.access`` also answers for root, whom permission bits do not stop: it reports a read-only
    mount (EROFS) all the same."""
    folder = settings.home
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK | os.X_OK)


def ensure_home(settings: Settings) -> Settings:
    """Create the home and its folders (for commands that write); a clear error if it is not writable."""
    if not home_is_writable(settings):
        raise SettingsError(
            f"{HOME_ENV} {settings.home} is read-only: reading commands (psl runs, show, export) work, "
            f"this one writes; set {HOME_ENV} to a writable folder"
        )
    try:
        for folder in (settings.home, settings.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SettingsError(
            f"cannot create {HOME_ENV} folders under {settings.home} ({err.strerror or err}); "
            f"set {HOME_ENV} to a writable folder"
        ) from None
    if settings.checkpoints_dir is not None:
        try:
            settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SettingsError(
                f"cannot create the checkpoint folder {settings.checkpoints_dir} ({err.strerror or err}); "
                f"set {CHECKPOINT_ENV} to a folder every worker host can write"
            ) from None
    return settings


def configure_core(settings: Settings) -> None:
    """Tell psl_core where datasets and caches are (psl_core itself never reads the environment)."""
    from psl_core.data import configure_data_paths

    extra = [settings.data_dir] if settings.data_dir is not None else []
    cache = settings.cache_dir if os.access(settings.home, os.W_OK) or not settings.home.exists() else None
    configure_data_paths(data_dirs=extra, cache_dir=cache)
