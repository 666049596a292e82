"""The entropy loss term: values on fixed logits, and training moves H(p) the way the name says."""
import math

import pytest
import torch
import torch.nn.functional as F

from pipeline import entropy
from pipeline.config import EntropyLossConfig
from tests.pipeline.tiny import batch, tiny_bert


def test_entropy_of_known_distributions():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]])
    h = entropy.predictive_entropy(logits)
    assert h[0].item() == pytest.approx(math.log(4)) and h[1].item() == pytest.approx(0.0, abs=1e-6)


def test_term_signs_on_fixed_logits():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    p = torch.softmax(logits, -1)
    h = -(p * p.log()).sum().item()
    assert entropy.entropy_term(logits, EntropyLossConfig(mode="minimize", weight=0.5)).item() == pytest.approx(0.5 * h)
    assert entropy.entropy_term(logits, EntropyLossConfig(mode="confidence_penalty", weight=0.5)).item() == pytest.approx(-0.5 * h)
    assert entropy.entropy_term(logits, EntropyLossConfig(mode="none", weight=0.5)) == 0.0


def _mean_entropy_after_training(mode: str) -> float:
    model = tiny_bert(seed=3).train()
    x = batch(n=32, seed=5)
    y = torch.arange(32) % 3
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    cfg = EntropyLossConfig(mode=mode, weight=1.0)
    for _ in range(15):
        logits = model(**x).logits
        loss = F.cross_entropy(logits, y) + entropy.entropy_term(logits, cfg)
        loss.backward()
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        return entropy.predictive_entropy(model.eval()(**x).logits).mean().item()


def test_minimize_lowers_and_confidence_penalty_raises_the_mean_entropy():
    low, plain, high = (_mean_entropy_after_training(m) for m in ("minimize", "none", "confidence_penalty"))
    assert low < plain < high
    assert high - low > 0.05  # nats, of at most log 3 = 1.10


def test_negative_weight_is_a_config_error():
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="entropy.weight must be >= 0"):
        EntropyLossConfig(mode="minimize", weight=-1)
