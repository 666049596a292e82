"""The entropy sampler: seeded, sharded without overlap, weighted the named way, resumable."""
import pytest
import torch
from torch.utils.data import DistributedSampler

from pipeline import sampling
from pipeline.config import SamplingConfig

N = 103  # not a multiple of the world size: padding is exercised


def _samplers(cfg, world=2, seed=0, entropies=None):
    out = [sampling.EntropySampler(N, cfg, rank=r, world=world, seed=seed) for r in range(world)]
    for s in out:
        if entropies is not None:
            s.entropies = entropies.clone()
    return out


def _entropies():
    return torch.linspace(0.0, 1.0, N)  # sample i is more uncertain than sample i - 1


def test_uniform_is_distributed_samplers_order():
    cfg = SamplingConfig(mode="uniform")
    for rank in (0, 1):
        ours = sampling.EntropySampler(N, cfg, rank=rank, world=2, seed=4)
        ref = DistributedSampler(range(N), num_replicas=2, rank=rank, shuffle=True, seed=4)
        ours.set_epoch(3)
        ref.set_epoch(3)
        assert list(ours) == list(ref)


@pytest.mark.parametrize("mode", ["uniform", "entropy", "top_entropy"])
def test_shards_partition_the_global_order_and_seed_fixes_it(mode):
    cfg = SamplingConfig(mode=mode, warmup_epochs=1, top_fraction=0.3)
    a, b = _samplers(cfg, entropies=_entropies())
    for s in (a, b):
        s.set_epoch(2)
    shard_a, shard_b = list(a), list(b)
    assert len(shard_a) == len(shard_b) == len(a)
    order = a.global_order(2).tolist()
    # every position of the global order goes to exactly one rank (the head repeats as padding)
    interleaved = [i for pair in zip(shard_a, shard_b) for i in pair]
    assert interleaved[: len(order)] == order
    if mode != "entropy":  # without replacement: no sample on both ranks, all covered
        assert not set(shard_a[: len(order) // 2]) & set(shard_b[: len(order) // 2])
        assert len(set(order)) == len(order)
    again = _samplers(cfg, entropies=_entropies())[0]
    again.set_epoch(2)
    assert list(again) == shard_a
    other_seed = _samplers(cfg, seed=1, entropies=_entropies())[0]
    other_seed.set_epoch(2)
    assert list(other_seed) != shard_a


def test_entropy_mode_draws_in_proportion_to_epsilon_plus_entropy():
    cfg = SamplingConfig(mode="entropy", warmup_epochs=0, epsilon=0.1)
    (s,) = _samplers(cfg, world=1, entropies=_entropies())
    counts = torch.zeros(N)
    for epoch in range(200):
        counts += torch.bincount(s.global_order(epoch), minlength=N)
    weights = 0.1 + _entropies()
    expected = weights / weights.sum() * counts.sum()
    # the most uncertain fifth is drawn ~ (0.1 + 0.9) / (0.1 + 0.1) = 5x as often as the least
    assert float(counts[-20:].sum() / counts[:20].sum()) == pytest.approx(float(expected[-20:].sum() / expected[:20].sum()), rel=0.1)
    assert counts[-20:].sum() > 3 * counts[:20].sum()


def test_top_entropy_keeps_the_most_uncertain_and_shortens_the_epoch():
    cfg = SamplingConfig(mode="top_entropy", warmup_epochs=1, top_fraction=0.25)
    a, b = _samplers(cfg, entropies=_entropies())
    assert len(a) == 52  # warm-up epoch 0: all 103, padded to 104, split in two
    for s in (a, b):
        s.set_epoch(1)
    kept = set(a) | set(b)
    assert kept == set(range(N - 26, N))  # ceil(0.25 * 103) = 26 most uncertain
    assert sampling.steps_in_epochs(a, 3, batch_size=8) == [7, 2, 2]


def test_recorded_entropies_are_merged_across_ranks_and_survive_a_state_dict():
    cfg = SamplingConfig(mode="entropy")
    a, b = _samplers(cfg)
    a.record(torch.tensor([0, 1]), torch.tensor([0.2, 0.4]))
    b.record(torch.tensor([1, 2]), torch.tensor([0.6, 0.8]))
    summed = a.pending() + b.pending()  # what the all-reduce computes
    a.merge(summed)
    assert a.entropies[:3].tolist() == pytest.approx([0.2, 0.5, 0.8])
    assert a.entropies[3:].isnan().all()
    a.record(torch.tensor([0]), torch.tensor([1.0]))
    a.merge(a.pending())
    assert a.entropies[:3].tolist() == pytest.approx([1.0, 0.5, 0.8])  # unseen keep the old value
    resumed = sampling.EntropySampler(N, cfg, rank=0, world=2, seed=0)
    a.set_epoch(5)
    resumed.load_state_dict(a.state_dict())
    assert list(resumed) == list(a)


def test_locate_walks_uneven_epochs():
    assert sampling.locate(0, [7, 2, 2]) == (0, 0)
    assert sampling.locate(8, [7, 2, 2]) == (1, 1)
    assert sampling.locate(11, [7, 2, 2]) == (3, 0)


def test_bad_values_are_config_errors():
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="sampling.top_fraction"):
        SamplingConfig(top_fraction=0)
    with pytest.raises(ConfigError, match="sampling.epsilon"):
        SamplingConfig(epsilon=0)
