import pytest
import torch

from pipeline.schedule import inverse_time_factor, inverse_time_schedule


@pytest.mark.parametrize(
    "step, beta, warmup, expected",
    [(0, 0.1, 0, 1.0), (10, 0.1, 0, 0.5), (30, 0.1, 0, 0.25), (0, 0.1, 4, 0.25), (3, 0.1, 4, 1.0), (14, 0.1, 4, 0.5), (100, 0.0, 0, 1.0)],
)
def test_inverse_time_factor(step, beta, warmup, expected):
    assert inverse_time_factor(step, beta, warmup) == pytest.approx(expected)


def test_schedule_drives_adamw_learning_rate():
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    sched = inverse_time_schedule(opt, beta=0.5, warmup_steps=0)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.2, 0.2 / 1.5, 0.2 / 2.0, 0.2 / 2.5])
