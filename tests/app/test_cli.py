"""The `psl` command line: refusals of bad input (clear message, exit 2, nothing stored) and the commands."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app
from app.settings import get_settings
from storage import Store

runner = CliRunner()

TINY = {
    "name": "cli-tiny",
    "data": {"dataset": "digits"},
    "partition": {"num_clients": 4},
    "sampling": {"batch_size": 128},
    "training": {"epochs": 1, "max_steps_per_epoch": 3},
}


def write(path, data, fmt="yaml"):
    path.write_text(yaml.safe_dump(data) if fmt == "yaml" else json.dumps(data))
    return path


def invoke(*args):
    return runner.invoke(app, list(args))


def test_run_trains_and_writes_csv_and_summary(home):
    cfg = write(home / "tiny.yaml", TINY)
    result = invoke("run", str(cfg), "--out", str(home / "out"), "--set", "sampling.method=fpls")
    assert result.exit_code == 0, result.output
    assert "final test accuracy" in result.output
    assert "\r" not in result.output  # not a terminal: no progress-bar frames in piped output
    with open(home / "out" / "steps.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert yaml.safe_load((home / "out" / "config.yaml").read_text())["sampling"]["method"] == "fpls"
    assert (home / "out" / "epochs.csv").read_text().count("\n") == 2


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "does not exist"),
        ("data: [unclosed", "not valid YAML"),
        ({"sampling": {"methd": "ugs"}}, "sampling.methd: unknown field; did you mean sampling.method?"),
        (
            {"sampling": {"batch_size": 0}},
            "sampling.batch_size: Input should be greater than or equal to 1 (got 0)",
        ),
        ({"sampling": {"method": "fedavg"}}, "'fls', 'fpls', 'ugs', 'lds' or 'centralised' (got 'fedavg')"),
        ({"sampling": {"method": "centralised"}}, "set partition.num_clients to 1"),
        ("- a\n- b\n", "must hold a mapping"),
    ],
)
@pytest.mark.parametrize("command", ["run", "submit"])
def test_bad_config_is_refused_with_a_message_and_stores_nothing(home, content, expected, command):
    path = home / "bad.yaml"
    if content is not None:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    store = Store(get_settings().database_url)
    existing = store.create_run(name="keep-me", config=TINY, seed=0)
    result = invoke(command, str(path))
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output
    assert [r.id for r in store.list_runs()] == [existing]


def test_bad_override_is_refused(home):
    cfg = write(home / "tiny.yaml", TINY)
    result = invoke("run", str(cfg), "--set", "training.epochs=-3")
    assert result.exit_code == 2 and "training.epochs" in result.output
    result = invoke("run", str(cfg), "--set", "justakey")
    assert result.exit_code == 2 and "key=value" in result.output


def test_config_example_is_a_valid_documented_config(home):
    result = invoke("config", "example")
    assert result.exit_code == 0
    assert "# Global batch size B." in result.output
    path = home / "example.yaml"
    path.write_text(result.output)
    assert invoke("config", "check", str(path)).exit_code == 0


def test_schema_is_json_schema_of_the_config():
    result = invoke("schema")
    schema = json.loads(result.output)
    assert "sampling" in schema["properties"]
    assert "SamplingConfig" in schema["$defs"]


def test_submit_runs_show_cancel(home):
    cfg = write(home / "tiny.json", TINY, fmt="json")
    result = invoke("submit", str(cfg), "--tag", "demo")
    assert result.exit_code == 0 and "queued run #1" in result.output
    listing = invoke("runs")
    assert "cli-tiny" in listing.output and "queued" in listing.output
    assert "status queued" in invoke("show", "1").output
    assert invoke("cancel", "1").exit_code == 0
    assert Store(get_settings().database_url).get_run(1).status == "cancelled"
    missing = invoke("show", "99")
    assert missing.exit_code == 2 and "no run #99" in missing.output


def test_sweep_creates_grid_times_seeds_runs_in_one_group(home):
    cfg = write(home / "tiny.yaml", TINY)
    result = invoke(
        "sweep",
        str(cfg),
        "--grid",
        "sampling.method=[ugs,fls]",
        "--grid",
        "sampling.batch_size=[32,64]",
        "--seeds",
        "0,1",
    )
    assert result.exit_code == 0, result.output
    runs = Store(get_settings().database_url).list_runs()
    assert len(runs) == 8 and len({r.sweep_id for r in runs}) == 1
    combos = {(r.config["sampling"]["method"], r.config["sampling"]["batch_size"], r.seed) for r in runs}
    assert len(combos) == 8
    bad = invoke("sweep", str(cfg), "--grid", "sampling.method=[ugs,nope]")
    assert bad.exit_code == 2 and "sampling.method" in bad.output
    assert len(Store(get_settings().database_url).list_runs()) == 8  # the invalid sweep stored nothing


def test_export_then_import_round_trips_metrics(home):
    from app.worker.loop import run_worker

    cfg = write(home / "tiny.yaml", TINY)
    invoke("submit", str(cfg))
    run_worker(exit_when_idle=True)
    assert invoke("export", "1", "--out", str(home / "b.zip")).exit_code == 0
    result = invoke("import", str(home / "b.zip"))
    assert result.exit_code == 0 and "imported as run #2" in result.output
    store = Store(get_settings().database_url)
    a, b = store.read_step_metrics(1), store.read_step_metrics(2)
    assert a.drop(columns=["wall_time"]).equals(b.drop(columns=["wall_time"]))
    assert (
        store.read_epoch_metrics(2)["test_acc"].tolist() == store.read_epoch_metrics(1)["test_acc"].tolist()
    )
    assert store.get_run(2).config == store.get_run(1).config
    (home / "junk.zip").write_bytes(b"not a zip")
    bad = invoke("import", str(home / "junk.zip"))
    assert bad.exit_code == 2 and "not a PSL Studio run bundle" in bad.output
    assert len(store.list_runs()) == 2


def test_advise_prints_the_best_cut_per_device_and_respects_budgets(home):
    cfg = write(
        home / "mix.yaml",
        {
            "model": {"arch": "resnet8", "cut": 2},
            "partition": {"num_clients": 8},
            "system": {
                "clients": [
                    {"device": "rpi3bplus", "fraction": 0.5},
                    {"device": "jetson_gpu", "fraction": 0.5},
                ]
            },
        },
    )
    result = invoke("advise", str(cfg))
    assert result.exit_code == 0, result.output
    assert "best cut per device: rpi3bplus → " in result.output and "jetson_gpu → " in result.output
    # A budget that only the first blocks fit forces an early cut on the weak device.
    tight = invoke("advise", str(cfg), "--budget", "rpi3bplus=0.05")
    assert tight.exit_code == 0, tight.output
    assert "rpi3bplus → 1" in tight.output or "rpi3bplus → 2" in tight.output
    none_fits = invoke("advise", str(cfg), "--budget", "rpi3bplus=0.00001")
    assert none_fits.exit_code == 2 and "no cut fits device 'rpi3bplus'" in none_fits.output


# ---------------------------------------------------------------- the one validation path, conventions
@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"model": {"cut": 99}}, "model.cut"),
        ({"system": {"clients": [{"device": "toaster"}]}}, "system.clients.0.device"),
        ({"partition": {"num_clients": 5000}}, "partition.num_clients"),
    ],
)
@pytest.mark.parametrize("command", ["config check", "run", "submit", "sweep"])
def test_every_entry_point_refuses_what_the_worker_would_fail_on(home, overrides, field, command):
    cfg = write(home / "bad.yaml", {**TINY, **overrides})
    extra = ["--grid", "seed=[0,1]"] if command == "sweep" else []
    result = invoke(*command.split(), str(cfg), *extra)
    assert result.exit_code == 2, result.output
    assert f"- {field}:" in result.output and "Traceback" not in result.output
    assert Store(get_settings().database_url).list_runs() == []


def test_warnings_are_printed_and_the_config_still_passes(home):
    cfg = write(home / "big.yaml", {**TINY, "sampling": {"batch_size": 5000}})
    result = invoke("config", "check", str(cfg))
    assert result.exit_code == 0
    assert "warning: sampling.batch_size:" in result.output


def test_version_and_json_outputs_are_machine_readable(home):
    assert invoke("--version").output.startswith("psl-studio ")
    cfg = write(home / "tiny.yaml", TINY)
    submitted = json.loads(invoke("submit", str(cfg), "--json").output)
    assert submitted == {"run_id": 1, "name": "cli-tiny"}
    swept = json.loads(invoke("sweep", str(cfg), "--grid", "seed=[3,4]", "--json").output)
    assert swept["run_ids"] == [2, 3]
    listed = json.loads(invoke("runs", "--json").output)
    assert [r["id"] for r in listed] == [3, 2, 1] and listed[0]["status"] == "queued"
    shown = json.loads(invoke("show", "1", "--json").output)
    assert shown["id"] == 1 and shown["config"]["name"] == "cli-tiny" and shown["epochs"] == []
    assert json.loads(invoke("results", "1").output) == []


def test_unexpected_errors_end_in_one_line_and_exit_1_traceback_with_verbose(home, monkeypatch, capsys):
    from app import cli

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("app.cli.runs.open_store", broken)
    with pytest.raises(SystemExit) as exited:
        cli.main(["runs"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: RuntimeError: disk on fire (run with -v for the traceback)"
    with pytest.raises(RuntimeError, match="disk on fire"):
        cli.main(["runs", "-v"])


def test_worker_refuses_a_stale_after_shorter_than_three_heartbeats(home):
    result = invoke("worker", "--stale-after", "1", "--exit-when-idle")
    assert result.exit_code == 2 and "shorter than 3 heartbeats" in result.output


def test_run_names_never_escape_the_output_folder(home):
    cfg = write(home / "evil.yaml", {**TINY, "name": "../../escaped"})
    (home / "work").mkdir()
    import os

    os.chdir(home / "work")
    result = invoke("run", str(cfg), "--quiet")
    assert result.exit_code == 0, result.output
    made = [p for p in (home / "work" / "runs").iterdir()]
    assert len(made) == 1 and made[0].name.startswith("escaped-")
    assert not (home / "escaped").exists()


def test_worker_logs_claims_and_results_with_run_ids(home):
    cfg = write(home / "tiny.yaml", TINY)
    invoke("submit", str(cfg))
    assert invoke("worker", "--exit-when-idle").exit_code == 0
    log_text = (home / "logs" / "worker.log").read_text()
    assert "run 1 claimed" in log_text and "run 1: completed" in log_text
