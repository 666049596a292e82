"""CUDA paths: precision choice, fp16 with GradScaler, bf16 autocast, NCCL hooks. Skipped without a GPU."""
import socket

import pytest
import torch

from pipeline import compression, loop, precision
from pipeline.config import PowerSGDConfig
from pipeline.schedule import inverse_time_schedule

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _train_steps(choice, steps=20):
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 4)).to(device)

    class Wrapped(torch.nn.Module):  # loop.loss_step expects a HF-style output with .logits
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return type("Out", (), {"logits": self.inner(x)})()

    wrapped = Wrapped(model)
    x = torch.randn(256, 64, device=device)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-2)
    sched = inverse_time_schedule(opt, 0.01)
    scaler = precision.grad_scaler(choice, device)
    losses = []
    for _ in range(steps):
        loss, _ = loop.loss_step(wrapped, {"x": x, "labels": y}, lambda: precision.autocast(choice, device))
        loop.optimizer_step(loss, params, opt, scaler, sched, 1.0)
        losses.append(loss.item())
    return losses, scaler


def test_auto_picks_a_half_precision_on_gpu():
    choice = precision.detect("auto", torch.device("cuda"))
    assert choice.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")


def test_fp16_with_grad_scaler_trains():
    choice = precision.choose_precision("fp16", device="cuda")
    losses, scaler = _train_steps(choice)
    assert scaler.is_enabled() and scaler.get_scale() > 0
    assert losses[-1] < losses[0]


@pytest.mark.skipif(torch.cuda.is_available() and not torch.cuda.is_bf16_supported(), reason="GPU without bf16")
def test_bf16_autocast_trains():
    losses, scaler = _train_steps(precision.choose_precision("bf16", device="cuda", cuda_bf16=True))
    assert not scaler.is_enabled() and losses[-1] < losses[0]


@pytest.mark.parametrize("kind, per_element", [("fp16", 2), ("bf16", 2), ("none", 4)])
def test_nccl_hooks_count_bytes(kind, per_element):
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        compression.check_backend(kind, dist.get_backend())
        model = torch.nn.Linear(32, 16).cuda()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        counter = compression.register(ddp, kind, PowerSGDConfig())
        ddp(torch.randn(8, 32, device="cuda")).sum().backward()
        torch.cuda.synchronize()
        assert counter.end_step() == (32 * 16 + 16) * per_element
    finally:
        dist.destroy_process_group()
