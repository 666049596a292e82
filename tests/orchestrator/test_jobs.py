"""`spotfit submit / jobs / logs / stop` against a real Ray head on 127.0.0.1 that this module starts."""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator import jobs
from orchestrator.cli import main
from pipeline.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PY = shlex.quote(sys.executable)


# ---------------------------------------------------------------------------------------------
# Without Ray: what gets submitted and how it is shown.


def test_plan_carries_working_folder_and_checked_config(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "a.yaml").write_text("name: alpha\nnum_workers: 1\n")
    monkeypatch.chdir(tmp_path)
    plan = jobs.plan_submission(
        ["spotfit", "train", "--config", str(tmp_path / "configs" / "a.yaml"), "--set", "optim.lr=1e-4"], Path("."))
    # the laptop's absolute path becomes the uploaded copy's path, relative to the job's cwd
    assert plan.entrypoint == "spotfit train --config configs/a.yaml --set optim.lr=1e-4"
    assert plan.runtime_env["working_dir"] == str(tmp_path)
    assert {".venv", "runs", ".git"} <= set(plan.runtime_env["excludes"])
    # the print patch is off in the job's workers, as in a local `spotfit train`
    assert plan.runtime_env["env_vars"] == {"SPOTFIT_CONFIG": "configs/a.yaml", "RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}
    assert plan.metadata == {"spotfit_command": "spotfit train", "spotfit_config": "configs/a.yaml", "spotfit_name": "alpha"}


def test_plan_rejects_bad_configs_before_any_network(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text("name: alpha\n")
    with pytest.raises(ConfigError, match="unknown key optim.learning_rate"):
        jobs.plan_submission(["spotfit", "train", "--config", "a.yaml", "--set", "optim.learning_rate=1"], tmp_path)
    with pytest.raises(ConfigError, match="num_workers must be in"):
        jobs.plan_submission(["spotfit", "train", "--config=a.yaml", "--set=num_workers=0"], tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        jobs.plan_submission(["spotfit", "train", "--config", "missing.yaml"], tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match="outside the working folder"):
        jobs.plan_submission(["spotfit", "train", "--config", "a.yaml"], tmp_path / "sub")
    with pytest.raises(ConfigError, match="nothing to submit"):
        jobs.plan_submission([], tmp_path)


def test_format_jobs_newest_first():
    now = 10_000.0
    rows = [
        SimpleNamespace(submission_id="old", job_id=None, status="SUCCEEDED", start_time=1_000_000,
                        end_time=1_090_000, entrypoint="python a.py"),
        SimpleNamespace(submission_id="new", job_id=None, status="RUNNING", start_time=9_000_000,
                        end_time=None, entrypoint="x" * 100),
    ]
    lines = jobs.format_jobs(rows, now).splitlines()
    assert lines[0].split()[:3] == ["SUBMISSION", "ID", "STATUS"]
    assert lines[1].split()[:5] == ["new", "RUNNING", "16m40s", "ago", "16m40s"]
    assert lines[2].split()[:5] == ["old", "SUCCEEDED", "2h30m", "ago", "1m30s"]
    assert lines[1].endswith("x" * 57 + "...")


# ---------------------------------------------------------------------------------------------
# Against a real head with token auth on, as cluster.yaml runs it.


@pytest.fixture(scope="module")
def head(job_head):
    return job_head


@pytest.fixture(autouse=True)
def no_ambient_token(tmp_path, monkeypatch):
    """Only tokens a test passes count: no $RAY_AUTH_TOKEN*, an empty ~/.ray."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)


def spotfit(capsys, head, *argv, token: bool = True) -> tuple[int, str, str]:
    """Run the real CLI against `head`; the token travels as --token-file."""
    argv = [*argv[:1], "--address", head.address, *(["--token-file", str(head.token_file)] if token else []), *argv[1:]]
    code = main(argv)
    out, err = capsys.readouterr()
    assert head.token not in out + err  # never printed
    return code, out, err


@pytest.fixture
def workdir(tmp_path):
    """A working folder with things that must and must not be uploaded."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "marker.txt").write_text("uploaded-ok")
    for skipped in (".venv", "runs", ".git"):
        (work / skipped).mkdir()
        (work / skipped / "big.bin").write_bytes(b"0" * 1024)
    return work


def test_submit_follow_to_succeeded_then_jobs_and_logs(head, capsys, workdir):
    probe = ("import os, pathlib; print('marker', pathlib.Path('marker.txt').read_text()); "
             "print('listing', sorted(os.listdir('.'))); print('answer', 6 * 7)")
    code, out, err = spotfit(capsys, head, "submit", "--working-dir", str(workdir), "--job-id", "sf-hello",
                             "--follow", "--", "python", "-c", probe)
    assert code == 0, err
    assert out.splitlines()[0] == "sf-hello"
    assert "marker uploaded-ok" in out
    assert "listing ['marker.txt']" in out  # .venv, runs and .git stayed on the laptop
    assert "answer 42" in out
    assert "job sf-hello: SUCCEEDED" in err

    code, out, _ = spotfit(capsys, head, "jobs")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("sf-hello"))
    assert row.split()[1] == "SUCCEEDED"

    code, out, _ = spotfit(capsys, head, "logs", "sf-hello")
    assert code == 0 and "answer 42" in out


def test_submit_without_or_with_a_wrong_token_is_refused(head, capsys, workdir, tmp_path):
    code, _, err = spotfit(capsys, head, "submit", "--working-dir", str(workdir), "--job-id", "sf-no-token",
                           "--", "python", "-c", "print(1)", token=False)
    assert code == 2 and err.strip().endswith("requires a Ray token: set RAY_AUTH_TOKEN or pass --token-file")
    wrong = tmp_path / "wrong"
    wrong.write_text("0" * 32)
    code, _, err = main_err(capsys, ["jobs", "--address", head.address, "--token-file", str(wrong)])
    assert code == 2 and "refused the Ray token" in err and "0" * 32 not in err
    # the server side: nothing was submitted, and raw HTTP without the header gets 401
    client = jobs.connect(head.address, str(head.token_file))
    assert "sf-no-token" not in {j.submission_id for j in client.list_jobs()}
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(head.address + "/api/jobs/", timeout=10)
    assert refused.value.code == 401


def test_token_from_environment_and_never_in_the_job(head, capsys, workdir, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", head.token)
    code, out, err = main_err(capsys, ["submit", "--address", head.address, "--working-dir", str(workdir),
                                       "--job-id", "sf-env-token", "--follow", "--", "python", "-c", "print('env ok')"])
    assert code == 0 and "env ok" in out and head.token not in out + err
    info = jobs.connect(head.address).get_job_info("sf-env-token")
    assert head.token not in repr(info.runtime_env) + repr(info.metadata) + info.entrypoint


def main_err(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_failed_job_exits_1(head, capsys, workdir):
    code, out, err = spotfit(capsys, head, "submit", "--working-dir", str(workdir), "--follow", "--",
                             "python", "-c", "print('about to fail'); raise SystemExit(3)")
    assert code == 1
    assert "about to fail" in out and ": FAILED" in err


def test_stop_a_running_job(head, capsys, workdir):
    code, out, _ = spotfit(capsys, head, "submit", "--working-dir", str(workdir), "--job-id", "sf-sleeper", "--",
                           "python", "-c", "import time; print('sleeping', flush=True); time.sleep(300)")
    assert code == 0 and out.strip() == "sf-sleeper"
    client = jobs.connect(head.address, str(head.token_file))
    deadline = time.monotonic() + 60
    while client.get_job_status("sf-sleeper").value != "RUNNING":
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.5)
    started = time.monotonic()
    code, out, _ = spotfit(capsys, head, "stop", "sf-sleeper")
    assert code == 0 and out.strip() == "job sf-sleeper: STOPPED"
    assert time.monotonic() - started < 30  # stopped, not slept out
    assert client.get_job_status("sf-sleeper").value == "STOPPED"


def test_user_errors_are_one_line_and_exit_2(head, capsys, tmp_path):
    code, _, err = spotfit(capsys, head, "logs", "no-such-job")
    assert code == 2 and err.strip() == "spotfit logs: error: no job no-such-job on this cluster (see `spotfit jobs`)"
    code, _, err = spotfit(capsys, head, "stop", "no-such-job")
    assert code == 2 and "no job no-such-job" in err
    closed = head.address.rsplit(":", 1)[0] + ":1"  # nothing listens on port 1
    code, _, err = main_err(capsys, ["jobs", "--address", closed])
    assert code == 2 and "no Ray job server at" in err and len(err.strip().splitlines()) == 1
    code, _, err = main_err(capsys, ["jobs", "--address", "127.0.0.1:6379"])
    assert code == 2 and "must be the job server's http(s) URL" in err
    (tmp_path / "bad.yaml").write_text("optim: {lr: 5}\n")
    code, _, err = spotfit(capsys, head, "submit", "--working-dir", str(tmp_path),
                           "--", "spotfit", "train", "--config", str(tmp_path / "bad.yaml"))
    assert code == 2 and "optim.lr must be in (0, 1), got 5" in err


def test_cluster_yaml_labels_reach_the_node(head):
    """The launcher's RAY_OVERRIDE_LABELS with cluster.yaml's labels: Ray accepts the spotfit/* keys."""
    import json
    import urllib.request

    req = urllib.request.Request(head.address + "/api/v0/nodes?detail=1",
                                 headers={"Authorization": f"Bearer {head.token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        nodes = json.load(r)["data"]["result"]["result"]
    (node,) = nodes
    assert {k: v for k, v in node["labels"].items() if k.startswith("spotfit/")} == head.labels
    assert head.labels["spotfit/market"] == "on-demand"


def test_submit_spotfit_train_tiny(head, capsys, tmp_path, monkeypatch):
    """The real thing: the repository as working_dir, `spotfit train` on configs/tiny.yaml (~40 s here)."""
    if not (ROOT / "configs" / "tiny.yaml").is_file():
        pytest.skip("configs/tiny.yaml not in this checkout")
    monkeypatch.chdir(ROOT)
    out_dir = tmp_path / "tiny-run"  # the job runs on this machine, so its run folder is readable here
    code, out, err = spotfit(capsys, head, "submit", "--job-id", "sf-train-tiny", "--follow", "--",
                             "spotfit", "train", "--config", "configs/tiny.yaml", "--set", "num_workers=1",
                             "--set", f"output_dir={out_dir}")
    assert code == 0, out[-3000:] + err
    assert "job sf-train-tiny: SUCCEEDED" in err
    assert "test accuracy" in out
    assert (out_dir / "metrics.json").is_file()
    info = jobs.connect(head.address, str(head.token_file)).get_job_info("sf-train-tiny")
    assert info.metadata["spotfit_config"] == "configs/tiny.yaml" and info.metadata["spotfit_name"] == "tiny"
    # no token in anything the run wrote
    assert not any(head.token in p.read_text(errors="ignore") for p in out_dir.rglob("*") if p.is_file())
