import pytest
import torch

from pipeline.config import ConfigError
from pipeline.precision import choose_precision


@pytest.mark.parametrize(
    "requested, device, cuda_bf16, flags, expected",
    [
        ("auto", "cuda", True, set(), "bf16"),
        ("auto", "cuda", False, set(), "fp16"),
        ("auto", "cpu", False, {"avx2", "avx512f"}, "fp32"),
        ("auto", "cpu", False, {"avx2", "avx512_bf16"}, "bf16"),
        ("auto", "cpu", False, {"amx_bf16"}, "bf16"),
        ("fp32", "cuda", True, set(), "fp32"),
        ("bf16", "cpu", False, {"avx2"}, "bf16"),
        ("fp16", "cuda", False, set(), "fp16"),
    ],
)
def test_choice(requested, device, cuda_bf16, flags, expected):
    choice = choose_precision(requested, device=device, cuda_bf16=cuda_bf16, cpu_flags=frozenset(flags))
    assert choice.precision == expected
    assert choice.reason
    assert choice.needs_scaler == (expected == "fp16")


def test_emulated_bf16_is_allowed_but_warned():
    choice = choose_precision("bf16", device="cpu", cpu_flags=frozenset({"avx2"}))
    assert "emulates" in choice.reason


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ConfigError, match="precision=fp16 needs a CUDA GPU"):
        choose_precision("fp16", device="cpu")


def test_bf16_on_old_gpu_is_refused():
    with pytest.raises(ConfigError, match="not supported by this GPU"):
        choose_precision("bf16", device="cuda", cuda_bf16=False)


def test_dtypes():
    assert choose_precision("auto", device="cuda", cuda_bf16=True).dtype is torch.bfloat16
    assert choose_precision("fp32", device="cpu").dtype is None
