"""Shared fixtures. Ray start-up costs 10-20 s here, so one local Ray serves the whole session."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no machine here reaches a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("RAY_ADDRESS", None)  # never attach the tests to a real cluster


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 4 logical CPUs (2 train workers + controller fit on 2 cores)."""
    import ray

    from orchestrator.train_cmd import WORKER_ENV

    ray.init(address="local", num_cpus=4, include_dashboard=False, configure_logging=False, runtime_env={"env_vars": WORKER_ENV})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real AWS-compatible server (moto) on loopback; boto3 and pyarrow talk to it over HTTP."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def train_tiny(ray_session, tmp_path):
    """`spotfit train` on configs/tiny.yaml in-process, output and checkpoints under tmp_path;
    returns the run's metrics.json. Re-using run_name across calls resumes, as on the CLI."""
    import json
    from pathlib import Path

    from orchestrator.cli import main

    config = str(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml")

    def run(out: str, *overrides: str) -> dict:
        args = ["train", "--config", config, "--set", f"output_dir={tmp_path / out}", "--set", f"storage_path={tmp_path / 'ray'}"]
        for override in overrides:
            args += ["--set", override]
        assert main(args) == 0
        return json.loads((tmp_path / out / "metrics.json").read_text())

    return run
