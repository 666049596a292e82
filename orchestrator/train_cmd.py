"""`spotfit train`: check the config, start (or join) Ray, run the recipe, write the run folder."""
from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

from pipeline import data, distillation, modeling
from pipeline.config import ConfigError, TrainConfig, load_config, to_dict
from orchestrator import report, run_pricing


# Ray Train 2.60 patches print() in its workers to log *and* echo, which doubles every line and
# leaks the bytecode listings that dill captures from stdout while datasets fingerprints functions.
WORKER_ENV = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a model on Ray Train", description="Fine-tune a model on Ray Train.")
    p.add_argument("--config", required=True, help="YAML job config (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. optim.lr=1e-4 (repeatable)")
    p.add_argument("--address", default=None, help="Ray cluster to join (default: $RAY_ADDRESS, else start a local Ray)")
    p.set_defaults(run=run)


def resolve_names(cfg: TrainConfig, now: float) -> TrainConfig:
    run_name = cfg.run_name or f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
    output_dir = cfg.output_dir or str(Path("runs") / run_name)
    return dataclasses.replace(cfg, run_name=run_name, output_dir=output_dir)


def preflight(cfg: TrainConfig) -> None:
    """Everything that can be wrong with the user's input, found before anything is started or written."""
    _, labels = data.load_splits(cfg.data)
    if cfg.model.name not in ("minilm", "tiny"):
        modeling.resolve(cfg.model.name)
    if cfg.distill.teacher:
        distillation.check_teacher(cfg.distill.teacher, labels.id_of)
    out = Path(cfg.output_dir)
    if (out / "metrics.json").exists():
        raise ConfigError(f"output_dir {out} already holds a finished run; choose another output_dir or run_name")


def start_ray(address: str | None, cfg: TrainConfig, extra_cpus: int = 0):
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():  # embedded use (tests, notebooks): keep the caller's Ray
        return ray
    if address:
        ray.init(address=address)  # a submitted job carries WORKER_ENV in its own runtime_env
    else:
        # A local Ray sized for the job; logical CPUs, so 2 workers fit on a 2-core laptop.
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, cfg.num_workers * cfg.cpus_per_worker + extra_cpus), runtime_env={"env_vars": WORKER_ENV})
    return ray


def decide_gpu(setting: str, cluster_gpus: float, num_workers: int) -> bool:
    if setting == "auto":
        return cluster_gpus >= num_workers
    return setting == "true"


def run(args) -> int:
    started = time.time()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = resolve_names(load_config(args.config, args.overrides), started)
    preflight(cfg)

    ray = start_ray(args.address, cfg)
    from pipeline import recipe  # imports Ray Train; kept out of the CLI's start-up path

    use_gpu = decide_gpu(cfg.use_gpu, ray.cluster_resources().get("GPU", 0), cfg.num_workers)
    print(f"[spotfit] run {cfg.run_name}: {cfg.num_workers} worker(s) on {'GPU' if use_gpu else 'CPU'}, checkpoints in {cfg.storage_path}", flush=True)
    cfg, rate = run_pricing.price_run(cfg, use_gpu)  # budget_usd -> time_limit_s
    with run_pricing.RunMeter(cfg) as meter:
        result = recipe.fit(cfg, use_gpu)

    metrics = {k: v for k, v in result.metrics.items() if not k.startswith("_")}
    metrics["wall_seconds"] = time.time() - started
    metrics.update(run_pricing.run_cost_metrics(cfg, rate, meter.node_seconds, metrics))
    out = Path(cfg.output_dir)
    with result.checkpoint.as_directory() as folder:
        if (out / recipe.MODEL_DIR).exists():
            shutil.rmtree(out / recipe.MODEL_DIR)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(Path(folder) / recipe.MODEL_DIR, out / recipe.MODEL_DIR)
    report.write_run_folder(out, metrics, to_dict(cfg))
    print(report.results_table(metrics))
    print(out.resolve())
    sys.stdout.flush()
    return 0
