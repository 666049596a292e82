"""Byte counting of each DDP hook, on a real gloo process group of one rank."""
import socket

import pytest
import torch
import torch.distributed as dist

from pipeline import compression
from pipeline.config import ConfigError, PowerSGDConfig


@pytest.fixture(scope="module")
def gloo():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _model():
    torch.manual_seed(0)
    # 64x32 matrix (worth compressing at rank 2), bias 64, 3x64 matrix, bias 3
    return torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))


def _step(ddp):
    ddp(torch.randn(8, 32)).sum().backward()


def _numel(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kind, per_element", [("none", 4), ("fp16", 2)])
def test_plain_and_fp16_bytes(gloo, kind, per_element):
    model = _model()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    counter = compression.register(ddp, kind, PowerSGDConfig())
    _step(ddp)
    assert counter.end_step() == _numel(model) * per_element


def test_powersgd_sends_full_gradients_in_warmup_then_factors(gloo):
    model = _model()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    counter = compression.register(ddp, "powersgd", PowerSGDConfig(rank=2, warmup_steps=2))
    sent = []
    for _ in range(4):
        _step(ddp)
        sent.append(counter.end_step())
        ddp.zero_grad()
    full = _numel(model) * 4
    # 64x32: (64+32)*2*2 < 2048 -> factors; 3x64: (3+64)*2*2=268 > 192 -> sent whole; biases whole
    compressed = ((64 + 32) * 2 + 64 + 3 * 64 + 3) * 4
    assert sent[:2] == [full, full]
    assert sent[2:] == [compressed, compressed]
    assert compressed < full / 4


def test_powersgd_formula_matches_torch_rule():
    shapes = [torch.Size([384, 384]), torch.Size([384]), torch.Size([5, 384])]
    # 384x384 at rank 4: (768*4)*2 < 147456 -> 768*4 elements; 5x384: 389*4*2 > 1920 -> whole
    assert compression.powersgd_bucket_bytes(shapes, rank=4) == (768 * 4 + 384 + 5 * 384) * 4


def test_bf16_on_gloo_is_refused_at_start():
    with pytest.raises(ConfigError, match="grad_compression=bf16 needs the NCCL backend"):
        compression.check_backend("bf16", "gloo")
    compression.check_backend("bf16", "nccl")
    compression.check_backend("fp16", "gloo")
