"""The fine-tuning recipe under Ray Train: the one pipeline module that imports Ray.

`train_loop_per_worker` runs on every worker (one DDP rank each) and reads top to bottom;
`fit` builds the TorchTrainer around it. Ray is called in three places: the context, the
model/loader preparation and `ray.train.report`.
"""
from __future__ import annotations

import itertools
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import datasets
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
import transformers
from torch.utils.data import DataLoader

from pipeline import checkpoint, compression, data, distillation, entropy, loop, metrics, modeling, precision, pruning, sampling
from pipeline.config import TrainConfig
from pipeline.schedule import inverse_time_schedule

MODEL_DIR = "model"  # inside the final checkpoint: save_pretrained model, tokenizer, labels.json
EVAL_BATCH = 64


def _all_reduce_(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def evaluate(model, ds: datasets.Dataset, collate, num_labels: int, device, autocast) -> dict:
    """Each rank scores a strided shard; the confusion matrices are summed with one all-reduce."""
    rank, world = ray.train.get_context().get_world_rank(), ray.train.get_context().get_world_size()
    shard = ds.select(range(rank, len(ds), world))
    cm = torch.zeros(num_labels, num_labels, dtype=torch.long)
    model.eval()
    with torch.inference_mode():
        for batch in DataLoader(shard, batch_size=EVAL_BATCH, collate_fn=collate):
            labels = batch.pop("labels")
            with autocast():
                logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
            cm += metrics.confusion_matrix(logits.argmax(-1).cpu(), labels, num_labels)
    model.train()
    cm = _all_reduce_(cm)
    return {"accuracy": metrics.accuracy(cm), "macro_f1": metrics.macro_f1(cm)}


def _say(message: str, flush: bool = True) -> None:
    # Not print(): Ray Train 2.60 patches print to log *and* echo it, so each line showed twice.
    sys.stdout.write(message + "\n")
    if flush:
        sys.stdout.flush()


class _Dashboard:
    """Ray metrics gauges (Prometheus `ray_spotfit_*`), shown on the Ray dashboard and in Grafana."""

    NAMES = {
        "train_loss": "training loss (last logged step)",
        "train_samples_per_second": "training samples per second, all workers",
        "train_step": "optimizer steps done",
        "val_accuracy": "validation accuracy after the last epoch",
    }

    def __init__(self, run_name: str):
        from ray.util.metrics import Gauge

        self.gauges = {n: Gauge(f"spotfit_{n}", description=d, tag_keys=("run",)) for n, d in self.NAMES.items()}
        for gauge in self.gauges.values():
            gauge.set_default_tags({"run": run_name})

    def set(self, **values: float) -> None:
        for name, value in values.items():
            self.gauges[name].set(value)


def _quiet_ray_console() -> None:
    """Ray Train's worker root logger echoes every report and checkpoint at INFO to the console;
    forwarded late, those lines buried the results table. They still go to Ray Train's log files."""
    for handler in logging.getLogger().handlers:
        if handler.get_name() == "console":
            handler.setLevel(logging.WARNING)


def _format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def train_loop_per_worker(config: dict) -> None:
    cfg: TrainConfig = config["cfg"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(cfg.cpus_per_worker)
    torch.manual_seed(cfg.seed)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    _quiet_ray_console()
    device = ray.train.torch.get_device()
    say = _say if rank == 0 else (lambda *a, **k: None)

    # --- data and model (with a teacher: frozen, on every worker; the student may be cut from it)
    splits, labels = data.load_splits(cfg.data)
    teacher = distillation.load_teacher(cfg.distill.teacher, labels.id_of).to(device) if cfg.distill.teacher else None
    model_cfg = distillation.student_model_config(cfg.model, cfg.distill)
    tokenizer = modeling.load_tokenizer(model_cfg)
    tokenized = {s: data.tokenize(d, tokenizer, cfg.model.max_length) for s, d in splits.items()}
    if cfg.sampling.mode != "uniform":  # the sampler learns which rows a batch held from this column
        tokenized["train"] = tokenized["train"].add_column("idx", list(range(len(tokenized["train"]))))
    collate = data.collator(tokenizer)
    model = distillation.build_student(teacher, model_cfg, cfg.distill, labels, len(tokenizer))
    choice = precision.detect(cfg.precision, device)
    say(f"[spotfit] precision {choice.precision}: {choice.reason}")
    autocast = lambda: precision.autocast(choice, device)  # noqa: E731

    sampler = sampling.EntropySampler(len(tokenized["train"]), cfg.sampling, rank=rank, world=world, seed=cfg.seed)
    loader = DataLoader(tokenized["train"], batch_size=cfg.optim.batch_size, sampler=sampler, collate_fn=collate)
    loader = ray.train.torch.prepare_data_loader(loader, add_dist_sampler=False)  # moves batches to the device
    epoch_steps = sampling.steps_in_epochs(sampler, cfg.optim.epochs, cfg.optim.batch_size)  # top_entropy epochs are shorter
    total_steps = sum(epoch_steps)
    if cfg.optim.max_steps:
        total_steps = min(total_steps, cfg.optim.max_steps)

    # --- optimizer, schedule, scaler; then restore whatever a checkpoint holds
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    schedule = inverse_time_schedule(optimizer, cfg.optim.lr_decay, cfg.optim.warmup_steps)
    scaler = precision.grad_scaler(choice, device)
    step, train_seconds, history = 0, 0.0, {}
    resumed = ray.train.get_checkpoint()
    if resumed:
        with resumed.as_directory() as folder:
            state = checkpoint.load(Path(folder), rank=rank)
        pruning.restore_masks(model, state["model"])  # before loading: the state holds weight_orig/weight_mask
        model.load_state_dict(state["model"])
        if "sampler" in state:  # absent in checkpoints written before the entropy sampler
            sampler.load_state_dict(state["sampler"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        step, train_seconds, history = state["step"], state["train_seconds"], state["history"]
        history["resumed_from_step"] = step
        say(f"[spotfit] resumed from checkpoint at step {step}")

    model = ray.train.torch.prepare_model(model, parallel_strategy_kwargs=loop.DDP_KWARGS)
    ddp = isinstance(model, torch.nn.parallel.DistributedDataParallel)
    if ddp:
        compression.check_backend(cfg.grad_compression, dist.get_backend())
        counter = compression.register(model, cfg.grad_compression, cfg.powersgd)
    else:
        counter = compression.CommCounter()
    bare = model.module if ddp else model

    if "accuracy_before" not in history:
        before = evaluate(bare, tokenized["test"], collate, len(labels.names), device, autocast)
        history["accuracy_before"] = before["accuracy"]
        say(f"[spotfit] test accuracy before training: {before['accuracy']:.4f}")

    def save_and_report(extra: dict, final: bool = False) -> None:
        state = None
        if rank == 0:
            state = {
                "model": bare.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "scaler": scaler.state_dict(),
                "sampler": sampler.state_dict(),
                "step": step,
                "train_seconds": train_seconds,
                "history": history,
            }
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            checkpoint.save(folder, rank=rank, state=state, labels=labels.to_json() if rank == 0 else None)
            if final and rank == 0:
                # the checkpoint above keeps the masks (a longer run resumes them); model/ gets plain weights
                pruning.remove_masks(bare)
                bare.save_pretrained(folder / MODEL_DIR)
                tokenizer.save_pretrained(folder / MODEL_DIR)
                (folder / MODEL_DIR / checkpoint.LABELS_FILE).write_text((folder / checkpoint.LABELS_FILE).read_text())
            report = {"step": step, "train_seconds": train_seconds, **history, **extra}
            ray.train.report(report, checkpoint=ray.train.Checkpoint.from_directory(tmp))

    # --- the loop
    global_batch = cfg.optim.batch_size * world
    dashboard = _Dashboard(cfg.run_name) if rank == 0 else None
    model.train()
    stopped, pace = "", None
    while step < total_steps:
        epoch, skip = sampling.locate(step, epoch_steps)
        sampler.set_epoch(epoch)
        loss_sum = torch.zeros(3)  # (sum of losses, batches, sum of mean entropies) this epoch on this rank
        tick = time.perf_counter()  # step time includes fetching the batch; eval and checkpoints do not count
        for batch in itertools.islice(loader, skip, None):
            pruning.maybe_prune(bare, cfg.prune, step)  # same weights on every rank, so the same masks
            rows = batch.pop("idx", None)
            soft = distillation.teacher_logits(teacher, batch, autocast) if teacher is not None else None
            loss, logits = loop.loss_step(model, batch, autocast)
            if soft is not None:
                loss = distillation.combine(loss, logits, soft, cfg.distill.alpha, cfg.distill.temperature)
            loss = loss + entropy.entropy_term(logits, cfg.entropy)
            h = entropy.predictive_entropy(logits.detach())
            if rows is not None:
                sampler.record(rows, h)
            loop.optimizer_step(loss, params, optimizer, scaler, schedule, cfg.optim.max_grad_norm)
            counter.end_step()
            step += 1
            loss_sum += torch.tensor([loss.item(), 1.0, h.mean().item()])  # .item() syncs with the device: once a step is fine
            dt, tick = time.perf_counter() - tick, time.perf_counter()
            train_seconds += dt
            pace = dt if pace is None else 0.9 * pace + 0.1 * dt
            if rank == 0 and (step % cfg.log_every == 0 or step == total_steps):
                eta = (total_steps - step) * pace
                dashboard.set(train_loss=loss.item(), train_samples_per_second=global_batch / pace, train_step=step)
                say(
                    f"[spotfit] step {step}/{total_steps} | epoch {epoch + 1}/{sampling.locate(total_steps - 1, epoch_steps)[0] + 1} | "
                    f"loss {loss.item():.4f} | lr {schedule.get_last_lr()[0]:.2e} | "
                    f"{global_batch / pace:.1f} samples/s | ETA {_format_eta(eta)}",
                    flush=True,
                )
            if cfg.time_limit_s and _any_rank(train_seconds >= cfg.time_limit_s):
                stopped = "time_limit"
                break
            if step >= total_steps:
                break
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save_and_report({})
                tick = time.perf_counter()
        if stopped:
            break
        loss_sum = _all_reduce_(loss_sum)
        history.setdefault("epoch_train_loss", []).append((loss_sum[0] / loss_sum[1]).item())
        history.setdefault("epoch_train_entropy", []).append((loss_sum[2] / loss_sum[1]).item())
        if cfg.sampling.mode != "uniform":
            sampler.merge(_all_reduce_(sampler.pending()))  # next epoch draws from every rank's entropies
        val = evaluate(bare, tokenized["validation"], collate, len(labels.names), device, autocast)
        history.setdefault("val_accuracy", []).append(val["accuracy"])
        history.setdefault("val_macro_f1", []).append(val["macro_f1"])
        if dashboard:
            dashboard.set(val_accuracy=val["accuracy"])
        say(f"[spotfit] epoch {epoch + 1}: train loss {history['epoch_train_loss'][-1]:.4f} | val accuracy {val['accuracy']:.4f} | val macro-F1 {val['macro_f1']:.4f}")
        if step < total_steps:
            save_and_report({})

    test = evaluate(bare, tokenized["test"], collate, len(labels.names), device, autocast)
    save_and_report(
        {
            "sparsity": pruning.sparsity(bare),  # measured zeros in the Linear weights, not the ratio asked
            "num_hidden_layers": bare.config.num_hidden_layers,
            "test_accuracy": test["accuracy"],
            "test_macro_f1": test["macro_f1"],
            "samples_per_second": step * global_batch / train_seconds if train_seconds else 0.0,
            "precision": choice.precision,
            "precision_reason": choice.reason,
            "grad_compression": cfg.grad_compression if ddp else "none (single worker)",
            "comm_bytes_per_step": counter.mean_per_step,
            "num_workers": world,
            "total_steps": total_steps,
            "stopped": stopped or "completed",
            "done": True,
        },
        final=True,
    )


def _any_rank(flag: bool) -> bool:
    """Ranks must agree to stop at the same step, or the next all-reduce hangs."""
    return bool(_all_reduce_(torch.tensor([float(flag)])).item())


def fit(cfg: TrainConfig, use_gpu: bool) -> ray.train.Result:
    """Run the recipe on `cfg.num_workers` Ray Train workers; re-using `run_name` resumes it."""
    # Keep workers in the job's working folder (Ray's default moves them to a per-run folder),
    # so relative data paths mean the same on the driver and on every node of a submitted job.
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    resources = {"CPU": cfg.cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
    trainer = ray.train.torch.TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": cfg},
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.num_workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=cfg.run_name,
            storage_path=cfg.storage_path if "://" in cfg.storage_path else str(Path(cfg.storage_path).resolve()),
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
    )
    return trainer.fit()
