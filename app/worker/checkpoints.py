"""Where checkpoints live, so that a run taken over by another host continues from its checkpoint.

``PSL_CHECKPOINT_URL`` (app/settings.py) is either a folder — by default ``$PSL_HOME/checkpoints``;
for several hosts a folder they all mount (NFS, a cluster file system) — or an fsspec URL
(``s3://bucket/ckpt``, ``gs://…``, ``memory://…``; the matching fsspec package must be installed).

The engine always writes to a local folder. For a folder location that IS the shared folder
(``<folder>/<run id>/``); for a URL it is a staging folder in the cache, and each checkpoint is
uploaded before its row is stored, so a stored row never points at an incomplete object. To resume,
the stored location is read as it is (a path, or downloaded from its URL); if this host cannot read it
(the shared folder is mounted at another path here), the same ``<run id>/<file>`` under this host's
location is tried.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from app.settings import CHECKPOINT_ENV, Settings, SettingsError

log = logging.getLogger("psl.checkpoints")

STAGING_FOLDER = "checkpoint-staging"


def _filesystem(url: str):  # noqa: ANN202 - (fsspec filesystem, path inside it)
    """The fsspec filesystem of ``url``; a SettingsError saying what to install if there is none."""
    try:
        from fsspec.core import url_to_fs

        return url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise SettingsError(
            f"{CHECKPOINT_ENV}={url!r} cannot be opened here: {err}. Install the fsspec package for "
            "its scheme (e.g. s3fs for s3://, gcsfs for gs://) or use a folder every host mounts"
        ) from None


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class CheckpointLocation:
    """The checkpoint location of one set of settings: where the engine writes, what the store keeps,
    and how a stored checkpoint is found again on this host."""

    def __init__(self, settings: Settings):
        self.url = settings.checkpoint_url
        self.folder = settings.checkpoints_dir  # None when checkpoints go to a URL
        self.staging = settings.cache_dir / STAGING_FOLDER
        if self.folder is None:
            _filesystem(self.url)  # fail now, with the message, rather than at the first checkpoint

    def __repr__(self) -> str:
        return f"CheckpointLocation({self.url!r})"

    def engine_dir(self, run_id: int) -> Path:
        """The folder the engine writes the run's checkpoints to."""
        return (self.folder if self.folder is not None else self.staging) / str(run_id)

    def publish(self, local_path: str, run_id: int) -> str:
        """Make a checkpoint the engine wrote readable by every host; returns the location to store.

        A folder location needs nothing (the engine wrote into it). For a URL the file (or folder) is
        uploaded, then its staged copy removed."""
        if self.folder is not None:
            return str(local_path)
        source = Path(local_path)
        target = f"{self.url}/{run_id}/{source.name}"
        fs, path = _filesystem(target)
        fs.put(str(source), path, recursive=source.is_dir())
        _remove(source)
        return target

    def fetch(self, location: str, run_id: int) -> Path | None:
        """A local path of the stored checkpoint ``location`` to resume from, or None if it cannot be
        read from this host (neither where it was stored nor under this host's location)."""
        name = location.rstrip("/").rsplit("/", 1)[-1]
        here = (
            str(self.folder / str(run_id) / name)
            if self.folder is not None
            else f"{self.url}/{run_id}/{name}"
        )
        for candidate in dict.fromkeys([location, here]):  # each once, the stored location first
            if "://" not in candidate:
                if Path(candidate).exists():
                    return Path(candidate)
                continue
            fs, path = _filesystem(candidate)
            if not fs.exists(path):
                continue
            local = self.staging / f"{run_id}-resume" / name
            shutil.rmtree(local.parent, ignore_errors=True)
            local.parent.mkdir(parents=True, exist_ok=True)
            fs.get(path, str(local), recursive=fs.isdir(path))
            return local
        return None

    def run_location(self, run_id: int) -> str:
        """Where the run's checkpoints live: ``<folder>/<run id>`` or ``<url>/<run id>``."""
        base = str(self.folder) if self.folder is not None else self.url
        return f"{base}/{int(run_id)}"

    def _inside_run(self, location: str, run_id: int) -> bool:
        """True if ``location`` names something inside the run's own location (never the location
        itself, never elsewhere: a stored row, from a shared or imported database, could name any
        path, and deleting must not follow it)."""
        if self.folder is not None:
            if "://" in location:
                return False
            own = (self.folder / str(int(run_id))).resolve()
            path = Path(location).resolve()
            return path != own and path.is_relative_to(own)
        prefix = self.run_location(run_id) + "/"
        rest = location[len(prefix) :] if location.startswith(prefix) else ""
        return bool(rest) and all(part not in ("", ".", "..") for part in rest.split("/"))

    def remove(self, locations: list[str], run_id: int) -> int:
        """Delete stored checkpoints of ``run_id`` (those inside its own location); returns how many."""
        removed = 0
        for location in locations:
            if not self._inside_run(location, run_id):
                log.warning(
                    "run %s: not deleting %s, it is outside %s", run_id, location, self.run_location(run_id)
                )
                continue
            try:
                if self.folder is not None:
                    _remove(Path(location))
                else:
                    fs, path = _filesystem(location)
                    if fs.exists(path):
                        fs.rm(path, recursive=True)
                removed += 1
            # A file we cannot delete stays; the run's data is unaffected, so cleanup never fails a
            # run. Object stores raise their own errors (gcsfs's HttpError is no OSError).
            except Exception as err:  # noqa: BLE001
                log.warning("run %s: cannot delete checkpoint %s: %s", run_id, location, err)
        return removed

    def remove_run(self, run_id: int) -> None:
        """Delete everything of the run: its checkpoint folder (or objects) and what was staged here."""
        try:
            if self.folder is not None:
                shutil.rmtree(self.folder / str(int(run_id)), ignore_errors=True)
            else:
                fs, path = _filesystem(self.run_location(run_id))
                if fs.exists(path):
                    fs.rm(path, recursive=True)
        except Exception as err:  # noqa: BLE001 - as in remove(): what cannot be deleted stays
            log.warning(
                "run %s: cannot delete its checkpoints at %s: %s", run_id, self.run_location(run_id), err
            )
        _remove(self.staging / str(int(run_id)))
        _remove(self.staging / f"{int(run_id)}-resume")

    def discard_staging(self, run_id: int) -> None:
        """Remove what this host staged for the run (uploads already done, the downloaded resume copy)."""
        if self.folder is None:
            _remove(self.staging / str(run_id))
        _remove(self.staging / f"{run_id}-resume")
