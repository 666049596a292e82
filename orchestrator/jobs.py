"""`spotfit submit / jobs / logs / stop`: Ray's Job Submission API, nothing home-made.

    ray dashboard cluster.yaml                  # tunnels the job server to 127.0.0.1:8265
    spotfit submit -- spotfit train --config configs/medical.yaml --set num_workers=4
    spotfit jobs
    spotfit logs raysubmit_XXXX --follow
    spotfit stop raysubmit_XXXX

The working folder travels to the cluster as the job's runtime_env (venvs, runs/ and .git left
out) with the config inside it; the config is checked here first, so a typo fails in a second
on the laptop, not minutes later on the cluster. The token (see ray_auth) goes in a header only.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator import ray_auth
from orchestrator.train_cmd import WORKER_ENV
from pipeline.config import ConfigError, load_config

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
"""Where `ray dashboard cluster.yaml` forwards the head's job server (and a local `ray start --head`)."""

EXCLUDES = [".venv", "venv", "runs", ".git", "__pycache__", "*.egg-info", ".pytest_cache", ".whl", ".gl"]
"""Left out of the uploaded working folder (Ray caps it at 500 MiB; these are local-only anyway)."""

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


# ---------------------------------------------------------------------------------------------
# Pure parts: what gets submitted, and how jobs are shown.


@dataclass(frozen=True)
class Submission:
    entrypoint: str
    runtime_env: dict
    metadata: dict


def plan_submission(command: list[str], working_dir: Path) -> Submission:
    """Entrypoint, runtime_env and metadata for `command`, checking its --config and --set locally.

    A relative --config is read from the current folder, like every shell path; it must lie in
    the working folder, and the entrypoint names it relative to that folder (the job's cwd).
    """
    if not command:
        raise ConfigError("nothing to submit: put the command after --, e.g. spotfit submit -- spotfit train --config FILE")
    working_dir = working_dir.resolve()
    if not working_dir.is_dir():
        raise ConfigError(f"--working-dir {working_dir} is not a folder")
    metadata = {"spotfit_command": " ".join(command[:2]) if command[0] == "spotfit" else command[0]}
    env_vars: dict[str, str] = dict(WORKER_ENV)
    config = _flag_values(command, "--config")
    if config:
        path = Path(config[-1]).resolve()
        if not path.is_relative_to(working_dir):
            raise ConfigError(f"--config {config[-1]} is outside the working folder {working_dir}; only that folder is uploaded")
        if command[:2] == ["spotfit", "tune"]:  # its config may hold a tune: section, and --set tune.*
            from orchestrator.tune_cmd import load as load_tune

            cfg, _ = load_tune(str(path), _flag_values(command, "--set"))
        else:
            cfg = load_config(path, _flag_values(command, "--set"))  # ConfigError on a bad key or value
        relative = path.relative_to(working_dir).as_posix()
        command = _with_flag_value(command, "--config", relative)
        env_vars["SPOTFIT_CONFIG"] = relative
        metadata.update(spotfit_config=relative, spotfit_name=cfg.name)
    runtime_env = {"working_dir": str(working_dir), "excludes": list(EXCLUDES), "env_vars": env_vars}
    return Submission(entrypoint=shlex.join(command), runtime_env=runtime_env, metadata=metadata)


def _flag_values(command: list[str], flag: str) -> list[str]:
    """Every value of `flag X` and `flag=X`, in order."""
    values = []
    for i, arg in enumerate(command):
        if arg == flag and i + 1 < len(command):
            values.append(command[i + 1])
        elif arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
    return values


def _with_flag_value(command: list[str], flag: str, value: str) -> list[str]:
    out = list(command)
    for i, arg in enumerate(out):
        if arg == flag and i + 1 < len(out):
            out[i + 1] = value
        elif arg.startswith(flag + "="):
            out[i] = f"{flag}={value}"
    return out


def format_jobs(jobs: list, now: float) -> str:
    """One line per job, newest first: id, status, age, duration, entrypoint."""
    rows = [("SUBMISSION ID", "STATUS", "STARTED", "DURATION", "ENTRYPOINT")]
    for job in sorted(jobs, key=lambda j: j.start_time or 0, reverse=True):
        start = (job.start_time or 0) / 1000
        end = (job.end_time or 0) / 1000 or now
        rows.append((
            job.submission_id or job.job_id or "-",
            str(getattr(job.status, "value", job.status)),
            _ago(now - start) if start else "-",
            _duration(end - start) if start else "-",
            _truncate(job.entrypoint, 60),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4] for row in rows)


def _ago(seconds: float) -> str:
    return _duration(seconds) + " ago"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def exit_code(status: str) -> int:
    return 0 if status == "SUCCEEDED" else 1


# ---------------------------------------------------------------------------------------------
# Ray at the edge: the Job Submission client.


def connect(address: str, token_file: str | None = None):
    """A JobSubmissionClient for `address`, sending the token if there is one."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    if not address.startswith(("http://", "https://")):
        raise ConfigError(f"--address must be the job server's http(s) URL (e.g. {DEFAULT_ADDRESS}), got {address!r}")
    token = ray_auth.load_token(token_file)
    try:
        return JobSubmissionClient(address, headers=ray_auth.auth_headers(token))
    except ConnectionError:
        raise ConfigError(f"no Ray job server at {address}: run `ray dashboard cluster.yaml` or pass --address") from None
    except AuthenticationError:
        raise ConfigError(_auth_message(address, token)) from None


def _auth_message(address: str, token: str | None) -> str:
    if token is None:
        return f"{address} requires a Ray token: set RAY_AUTH_TOKEN or pass --token-file"
    return f"{address} refused the Ray token: check RAY_AUTH_TOKEN, --token-file or ~/.ray/auth_token"


def _call(fn, *args, what: str, **kwargs):
    """Client call with user errors (unknown job, refused token) as ConfigError."""
    from ray.exceptions import AuthenticationError

    try:
        return fn(*args, **kwargs)
    except AuthenticationError:
        raise ConfigError("the job server refused the Ray token") from None
    except RuntimeError as exc:
        if "404" in str(exc) or "does not exist" in str(exc):
            raise ConfigError(f"no job {what} on this cluster (see `spotfit jobs`)") from None
        raise


def wait_until_terminal(client, job_id: str, timeout_s: float, poll_s: float = 0.5) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(_call(client.get_job_status, job_id, what=job_id).value)
        if status in TERMINAL or time.monotonic() > deadline:
            return status
        time.sleep(poll_s)


def follow_logs(client, job_id: str, token: str | None = None, out=None) -> None:
    """Stream the job's logs until it ends (Ray's websocket tail)."""
    out = out or sys.stdout

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(ray_auth.redact(chunk, token))
            out.flush()

    _call(client.get_job_status, job_id, what=job_id)  # unknown id: a clear error, not a hang
    asyncio.run(tail())


# ---------------------------------------------------------------------------------------------
# CLI


def add_parser(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", default=os.environ.get("SPOTFIT_ADDRESS", DEFAULT_ADDRESS),
                        help=f"Ray job server URL (default $SPOTFIT_ADDRESS or {DEFAULT_ADDRESS})")
    common.add_argument("--token-file", default=None,
                        help="Ray auth token file (default $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)")

    p = sub.add_parser("submit", parents=[common], help="submit a command as a Ray job",
                       usage="spotfit submit [options] -- COMMAND ...")
    p.add_argument("--working-dir", default=".", help="folder uploaded as the job's working_dir (default .)")
    p.add_argument("--job-id", default=None, help="submission id (default: Ray's raysubmit_...)")
    p.add_argument("--follow", action="store_true", help="stream the logs until the job ends; exit 0 only on SUCCEEDED")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the entrypoint, after --")
    p.set_defaults(run=run_submit)

    p = sub.add_parser("jobs", parents=[common], help="list the cluster's jobs")
    p.set_defaults(run=run_jobs)

    p = sub.add_parser("logs", parents=[common], help="print a job's logs")
    p.add_argument("job_id")
    p.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")
    p.set_defaults(run=run_logs)

    p = sub.add_parser("stop", parents=[common], help="stop a job and wait until it has stopped")
    p.add_argument("job_id")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it to stop")
    p.set_defaults(run=run_stop)


def run(args) -> int:
    return args.run(args)


def run_submit(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    plan = plan_submission(command, Path(args.working_dir))
    client = connect(args.address, args.token_file)
    job_id = _call(client.submit_job, entrypoint=plan.entrypoint, runtime_env=plan.runtime_env,
                   metadata=plan.metadata, submission_id=args.job_id, what=args.job_id or "")
    print(job_id)
    if not args.follow:
        print(f"follow it: spotfit logs {job_id} --follow", file=sys.stderr)
        return 0
    follow_logs(client, job_id, token=ray_auth.load_token(args.token_file))
    status = wait_until_terminal(client, job_id, timeout_s=30)
    print(f"job {job_id}: {status}", file=sys.stderr)
    return exit_code(status)


def run_jobs(args) -> int:
    client = connect(args.address, args.token_file)
    print(format_jobs(_call(client.list_jobs, what=""), time.time()))
    return 0


def run_logs(args) -> int:
    client = connect(args.address, args.token_file)
    token = ray_auth.load_token(args.token_file)
    if args.follow:
        follow_logs(client, args.job_id, token=token)
        status = wait_until_terminal(client, args.job_id, timeout_s=30)
        print(f"job {args.job_id}: {status}", file=sys.stderr)
        return exit_code(status)
    sys.stdout.write(ray_auth.redact(_call(client.get_job_logs, args.job_id, what=args.job_id), token))
    return 0


def run_stop(args) -> int:
    client = connect(args.address, args.token_file)
    _call(client.stop_job, args.job_id, what=args.job_id)
    status = wait_until_terminal(client, args.job_id, timeout_s=args.timeout)
    print(f"job {args.job_id}: {status}")
    return 0 if status in TERMINAL else 1
