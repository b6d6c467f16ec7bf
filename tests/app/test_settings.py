"""Settings are resolved in one place: ~ expanded, relative paths made absolute, defaults documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import SettingsError, ensure_home, get_settings


def test_defaults_live_under_home_psl_studio():
    s = get_settings({})
    assert s.home == Path("~/.psl-studio").expanduser()
    assert s.database_url == f"sqlite:///{s.home / 'psl.db'}"
    assert s.data_dir is None and s.log_level == "INFO"
    assert s.worker_log == s.home / "logs" / "worker.log"


def test_tilde_and_relative_paths_are_resolved_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    s = get_settings({"PSL_HOME": "~/x", "PSL_DATA_DIR": "~/data"})
    assert s.home == tmp_path / "x" and s.data_dir == tmp_path / "data"
    assert s.database_url == f"sqlite:///{tmp_path / 'x' / 'psl.db'}"
    monkeypatch.chdir(tmp_path)
    assert get_settings({"PSL_HOME": "rel"}).home == tmp_path / "rel"


def test_database_url_wins_and_children_inherit_the_same_settings(tmp_path):
    env = {"PSL_HOME": str(tmp_path), "PSL_DATABASE_URL": "postgresql+psycopg://u@h/db"}
    s = get_settings(env)
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert get_settings(s.as_env()) == s


def test_bad_log_level_is_refused_with_the_variable_named():
    with pytest.raises(SettingsError, match="PSL_LOG_LEVEL"):
        get_settings({"PSL_LOG_LEVEL": "chatty"})


def test_reading_settings_creates_nothing_and_ensure_home_creates_the_folders(tmp_path):
    s = get_settings({"PSL_HOME": str(tmp_path / "h")})
    assert not (tmp_path / "h").exists()
    ensure_home(s)
    assert s.checkpoints_dir.is_dir() and s.logs_dir.is_dir()


def test_unwritable_home_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SettingsError, match="set PSL_HOME to a writable folder"):
        ensure_home(get_settings({"PSL_HOME": str(blocker / "home")}))
