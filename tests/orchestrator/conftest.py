"""Fixtures for orchestrator tests. LocalHead: a real Ray head on 127.0.0.1 in its own process group, on free ports, for job-server tests.

Never `ray stop` (it kills every Ray on the machine); `LocalHead.close` kills only this head's
process group. Own --temp-dir, so other sessions' `session_latest` is left alone.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port_range(width: int = 40) -> int:
    """Start of `width` consecutive ports that are free right now (worker ports)."""
    for _ in range(50):
        start = free_ports(1)[0]
        if start + width >= 65000:
            continue
        try:
            probe = []
            for port in range(start, start + width):
                s = socket.socket()
                probe.append(s)
                s.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
        finally:
            for s in probe:
                s.close()
    raise RuntimeError("no free port range")


class LocalHead:
    def __init__(self, token: str | None = None, num_cpus: int = 2, timeout_s: float = 90, env_extra: dict | None = None):
        (self.gcs_port, self.dashboard_port, client, agent_http, agent_grpc, metrics, node_mgr,
         obj_mgr, rt_env) = free_ports(9)
        worker_lo = free_port_range()
        self.metrics_port = metrics
        self.temp_dir = tempfile.mkdtemp(prefix="sf-", dir="/tmp")  # short: unix socket paths
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # job entrypoints find `spotfit`
        env["RAY_AUTH_MODE"] = "token" if token else "disabled"  # explicit: never inherit a default
        if token:
            env["RAY_AUTH_TOKEN"] = token  # this process tree only; no token file is written
        env.update(env_extra or {})
        cmd = [
            str(VENV_BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats",
            "--node-ip-address=127.0.0.1", f"--port={self.gcs_port}",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}", "--include-dashboard=true",
            f"--num-cpus={num_cpus}", "--num-gpus=0",
            f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent_http}",
            f"--dashboard-agent-grpc-port={agent_grpc}", f"--metrics-export-port={metrics}",
            f"--node-manager-port={node_mgr}", f"--object-manager-port={obj_mgr}",
            f"--runtime-env-agent-port={rt_env}",
            f"--min-worker-port={worker_lo}", f"--max-worker-port={worker_lo + 39}",
            f"--temp-dir={self.temp_dir}",
        ]
        self.log = open(Path(self.temp_dir) / "head.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            self._wait_ready(token, timeout_s)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, token: str | None, timeout_s: float) -> None:
        """Ready when the dashboard lists the head node as alive (with the token if there is one)."""
        deadline = time.monotonic() + timeout_s
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited {self.proc.returncode}: {self.tail()}")
            try:
                req = urllib.request.Request(self.address + "/api/v0/nodes", headers=headers)
                with urllib.request.urlopen(req, timeout=5) as r:
                    if json.load(r)["data"]["result"]["total"] >= 1:
                        return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"Ray head not ready after {timeout_s}s: {self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        return (Path(self.temp_dir) / "head.log").read_text()[-2000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        try:  # raylet, GCS, dashboard and workers share the group; a slow shutdown is not waited for
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _kill_group_leftovers(self.temp_dir)
        self.log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _kill_group_leftovers(temp_dir: str) -> None:
    """Kill processes whose command line names this head's temp dir (only ever ours)."""
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if temp_dir in cmdline and int(pid_dir.name) != os.getpid():
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def job_head(tmp_path_factory):
    """A head with token auth on (as cluster.yaml runs it), for one test module.

    The token lives in the head's environment and in `head.token_file` (a temp file), never in
    ~/.ray/auth_token, which other sessions' Ray would pick up.
    """
    token = secrets.token_hex(16)
    # Node labels exactly as `ray up` hands cluster.yaml's head labels to `ray start`.
    labels = yaml.safe_load((ROOT / "cluster.yaml").read_text())["available_node_types"]["head_cpu"]["labels"]
    head = LocalHead(token=token, num_cpus=2, env_extra={"RAY_OVERRIDE_LABELS": json.dumps(labels)})
    head.labels = labels
    head.token = token
    head.token_file = tmp_path_factory.mktemp("token") / "auth_token"
    head.token_file.write_text(token)
    yield head
    head.close()
