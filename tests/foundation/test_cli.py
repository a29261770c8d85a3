"""The `carebell` command tells what went wrong in one line, never a traceback: bad
options (exit 2), a data dir it cannot use, a database it cannot reach or that is not
migrated yet; and it runs in development mode where that is plainly meant."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile

import pytest
from django.core.management import CommandError, call_command

from carebell.cli import development_defaults

# Tests that start `carebell` in a child process (which keeps the real clock) are
# marked real_clock.
UNREACHABLE = "postgres://postgres@127.0.0.1:1/x"


def run_carebell(
    env: dict[str, str], *args: str, as_user: list[str] | None = None
) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CAREBELL_")}
    return subprocess.run(
        [*(as_user or []), sys.executable, "-m", "carebell", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# -- the data dir ------------------------------------------------------------------


@pytest.mark.real_clock
def test_a_data_dir_that_is_a_file_stops_start_up_with_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    env = {"CAREBELL_DEBUG": "1", "CAREBELL_DATA_DIR": str(tmp_path / "file")}
    result = run_carebell(env, "check")
    assert result.returncode == 2
    assert "CAREBELL_DATA_DIR" in one_line(result) and "not a directory" in result.stderr


@pytest.mark.real_clock
def test_a_data_dir_beneath_a_file_stops_start_up_with_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    env = {"CAREBELL_DEBUG": "1", "CAREBELL_DATA_DIR": str(tmp_path / "file" / "var")}
    result = run_carebell(env, "check")
    assert result.returncode == 2
    assert "cannot be created" in one_line(result)


@pytest.mark.real_clock
def test_a_read_only_data_dir_stops_start_up_with_one_line():
    # Root writes through a read-only mode, so as root the command runs as nobody
    # (setpriv, util-linux); the folder sits in /tmp so nobody can reach it.
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    folder = tempfile.mkdtemp(prefix="carebell-ro-")
    os.chmod(folder, 0o555)  # noqa: S103 -- readable by the command, writable by none
    try:
        env = {"CAREBELL_DEBUG": "1", "CAREBELL_DATA_DIR": folder}
        result = run_carebell(env, "check", as_user=as_user if os.geteuid() == 0 else None)
    finally:
        os.rmdir(folder)
    assert result.returncode == 2
    assert "not writable" in one_line(result)


# -- the database ------------------------------------------------------------------


@pytest.mark.real_clock
@pytest.mark.parametrize("command", [["plan"], ["worker"], ["worker", "--once"], ["scheduler"]])
def test_an_unreachable_database_is_one_line_and_a_failure(tmp_path, command):
    env = {"CAREBELL_DEBUG": "1", "CAREBELL_DATA_DIR": str(tmp_path)}
    result = run_carebell({**env, "CAREBELL_DATABASE_URL": UNREACHABLE}, *command)
    assert result.returncode == 1
    assert one_line(result).startswith("carebell: cannot use the database: ")
    assert "port 1" in result.stderr


@pytest.mark.real_clock
def test_traceback_still_shows_the_database_error_when_asked(tmp_path):
    env = {"CAREBELL_DEBUG": "1", "CAREBELL_DATA_DIR": str(tmp_path)}
    result = run_carebell({**env, "CAREBELL_DATABASE_URL": UNREACHABLE}, "plan", "--traceback")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


@pytest.mark.real_clock
def test_a_database_not_migrated_yet_says_to_migrate(tmp_path):
    result = run_carebell({"CAREBELL_DEBUG": "1", "CAREBELL_DATA_DIR": str(tmp_path)}, "plan")
    assert result.returncode == 1
    assert "run `carebell migrate` first" in one_line(result)


# -- development mode --------------------------------------------------------------


def test_the_demo_is_development_unless_told_otherwise():
    env: dict[str, str] = {}
    assert development_defaults("demo", env) == ""
    assert env["CAREBELL_DEBUG"] == "1"
    off = {"CAREBELL_DEBUG": "0"}
    development_defaults("demo", off)
    assert off["CAREBELL_DEBUG"] == "0"


@pytest.mark.real_clock
def test_the_demo_starts_without_carebell_debug(tmp_path):
    result = run_carebell({"CAREBELL_DATA_DIR": str(tmp_path)}, "demo", "--help")
    assert result.returncode == 0, result.stderr
    assert "--patients" in result.stdout


def test_a_data_dir_a_development_run_made_is_used_in_development_mode(tmp_path):
    (tmp_path / "secret_key").write_text("generated-for-development")
    env = {"CAREBELL_DATA_DIR": str(tmp_path)}
    note = development_defaults("plan", env)
    assert env["CAREBELL_DEBUG"] == "1"
    assert str(tmp_path) in note and "development data dir" in note


@pytest.mark.parametrize(
    "env",
    [
        {},  # no generated key: a production data dir
        {"CAREBELL_DEBUG": "0"},
        {"CAREBELL_SECRET_KEY": "x" * 50},
        {"CAREBELL_DATABASE_URL": "postgres://carebell@db.internal/carebell"},
    ],
)
def test_production_is_never_switched_to_development(tmp_path, env):
    if env:
        (tmp_path / "secret_key").write_text("generated-for-development")
    env = {**env, "CAREBELL_DATA_DIR": str(tmp_path)}
    before = dict(env)
    assert development_defaults("worker", env) == ""
    assert env == before


@pytest.mark.real_clock
def test_a_command_runs_in_development_mode_in_a_data_dir_a_development_run_made(tmp_path):
    (tmp_path / "secret_key").write_text("generated-for-development")
    result = run_carebell({"CAREBELL_DATA_DIR": str(tmp_path)}, "check")
    assert result.returncode == 0, result.stderr
    assert "debug mode is on" in result.stderr


@pytest.mark.real_clock
def test_production_without_a_secret_still_refuses_to_start(tmp_path):
    result = run_carebell({"CAREBELL_DATA_DIR": str(tmp_path)}, "check")
    assert result.returncode == 2
    assert "CAREBELL_SECRET_KEY is required" in one_line(result)


# -- the worker's and the scheduler's options ---------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("lease", ["nan", "inf", "-inf", "-1", "0", "1e300"])
def test_the_worker_refuses_a_lease_that_is_not_a_sane_number_of_seconds(lease):
    with pytest.raises(CommandError, match="--lease must be a number of seconds") as raised:
        call_command("worker", "--once", f"--lease={lease}", stdout=io.StringIO())
    assert raised.value.returncode == 2


@pytest.mark.django_db
@pytest.mark.parametrize("idle", ["0", "0.01", "-1", "nan", "inf"])
def test_the_worker_refuses_an_idle_sleep_that_would_spin_or_never_wake(idle):
    with pytest.raises(CommandError, match=r"--idle must be a number of seconds from 0\.1"):
        call_command("worker", f"--idle={idle}", stdout=io.StringIO())


@pytest.mark.django_db
@pytest.mark.parametrize(("option", "value"), [("--concurrency", "0"), ("--batch-size", "-5")])
def test_the_worker_refuses_counts_below_one(option, value):
    with pytest.raises(CommandError, match=f"{option} must be at least 1"):
        call_command("worker", "--once", option, value, stdout=io.StringIO())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--interval", "0"], "--interval must be a number of seconds from 1"),
        (["--interval", "0.5"], "--interval must be a number of seconds from 1"),
        (["--interval", "nan"], "--interval"),
        (["--sweep-every", "nan"], "--sweep-every"),
        (["--sweep-every", "-1"], "--sweep-every"),
    ],
)
def test_the_scheduler_refuses_intervals_that_would_spin(args, error):
    with pytest.raises(CommandError, match=error) as raised:
        call_command("scheduler", *args, stdout=io.StringIO())
    assert raised.value.returncode == 2


@pytest.mark.real_clock
def test_a_bad_option_is_one_line_and_exit_status_two(tmp_path):
    env = {"CAREBELL_DEBUG": "1", "CAREBELL_DATA_DIR": str(tmp_path)}
    result = run_carebell(env, "worker", "--lease", "nan")
    assert result.returncode == 2
    assert (
        one_line(result)
        == "CommandError: --lease must be a number of seconds from 1 to 86400, not nan"
    )
