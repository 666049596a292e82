"""Entropy-aware sample selection: spend the epoch's steps on the samples the model is unsure of.

Entropies are recorded from the training forward pass (free: the logits are there anyway), so
they are one epoch stale and taken with dropout on; an extra scoring pass would cost a third of
an epoch. Each rank records what it saw, the tables are summed with one all-reduce at the end
of the epoch, and every rank draws the next epoch's global order from the same generator, then
takes its stride: shards never share a position, and the same seed gives the same order.
"""
from __future__ import annotations

import math

import torch
from torch.utils.data import Sampler

from pipeline.config import SamplingConfig


class EntropySampler(Sampler[int]):
    """uniform: a seeded permutation per epoch, exactly DistributedSampler(shuffle=True)'s order;
    entropy: n draws with replacement, p_i ~ epsilon + H_i; top_entropy: the top_fraction most
    uncertain, shuffled. Selection starts after `warmup_epochs` uniform epochs."""

    def __init__(self, num_samples: int, cfg: SamplingConfig, *, rank: int, world: int, seed: int) -> None:
        self.n, self.cfg, self.rank, self.world, self.seed = num_samples, cfg, rank, world, seed
        self.epoch = 0
        self.entropies = torch.full((num_samples,), float("nan"))  # what the next draw ranks by
        self._seen = torch.zeros(2, num_samples)  # (sum of H, count) recorded on this rank this epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def selective(self, epoch: int) -> bool:
        return self.cfg.mode != "uniform" and epoch >= self.cfg.warmup_epochs

    def epoch_size(self, epoch: int) -> int:
        """Global samples drawn in `epoch`: fewer for top_entropy, so its epochs take fewer steps."""
        if self.selective(epoch) and self.cfg.mode == "top_entropy":
            return max(1, math.ceil(self.cfg.top_fraction * self.n))
        return self.n

    def global_order(self, epoch: int) -> torch.Tensor:
        """The epoch's sample order before sharding; identical on every rank."""
        g = torch.Generator().manual_seed(self.seed + epoch)
        if not self.selective(epoch):
            return torch.randperm(self.n, generator=g)
        # never-seen samples count as the most uncertain seen so far
        h = self.entropies
        h = torch.nan_to_num(h, nan=float(h.nan_to_num(0.0).max()) if h.isnan().any() else 0.0)
        if self.cfg.mode == "entropy":
            return torch.multinomial(self.cfg.epsilon + h, self.n, replacement=True, generator=g)
        top = torch.topk(h, self.epoch_size(epoch)).indices
        return top[torch.randperm(len(top), generator=g)]

    def __iter__(self):
        order = self.global_order(self.epoch)
        padded = len(self) * self.world  # repeat the head so every rank takes as many steps
        order = torch.cat([order, order[: padded - len(order)]])
        return iter(order[self.rank :: self.world].tolist())

    def __len__(self) -> int:
        return math.ceil(self.epoch_size(self.epoch) / self.world)

    def record(self, indices: torch.Tensor, entropies: torch.Tensor) -> None:
        """Note this rank's entropies for the samples of one batch (detached, on CPU)."""
        idx = indices.detach().cpu().long()
        self._seen[0].index_add_(0, idx, entropies.detach().float().cpu())
        self._seen[1].index_add_(0, idx, torch.ones(len(idx)))

    def pending(self) -> torch.Tensor:
        """(2, n) sums and counts of this epoch on this rank: all-reduce it, then `merge`."""
        return self._seen.clone()

    def merge(self, summed: torch.Tensor) -> None:
        """Take the all-ranks sums; samples not seen this epoch keep their older entropy."""
        seen = summed[1] > 0
        self.entropies[seen] = summed[0][seen] / summed[1][seen]
        self._seen.zero_()

    def state_dict(self) -> dict:
        return {"entropies": self.entropies.clone(), "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.entropies, self.epoch = state["entropies"].clone(), state["epoch"]


def steps_in_epochs(sampler: EntropySampler, epochs: int, batch_size: int) -> list[int]:
    """Optimizer steps of each epoch on every rank (the last batch may be short, never dropped)."""
    return [math.ceil(math.ceil(sampler.epoch_size(e) / sampler.world) / batch_size) for e in range(epochs)]


def locate(step: int, steps: list[int]) -> tuple[int, int]:
    """(epoch, batches into it) for a global step count; epochs may differ in length."""
    for epoch, n in enumerate(steps):
        if step < n:
            return epoch, step
        step -= n
    return len(steps), 0
