"""Magnitude pruning on the tiny BERT: asked sparsity reached, masks through a state dict, schedule."""
import pytest
import torch

from pipeline import pruning
from pipeline.config import ConfigError, PruneConfig
from tests.pipeline.tiny import batch, tiny_bert


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.9])
def test_prune_to_reaches_the_asked_global_sparsity(ratio):
    model = tiny_bert()
    pruning.prune_to(model, ratio)
    assert pruning.sparsity(model) == pytest.approx(ratio, abs=1e-4)
    # global, not per layer: layers end up with different sparsities
    per_layer = {round(float((m.weight == 0).float().mean()), 3) for m, _ in pruning.linear_weights(model)}
    assert len(per_layer) > 1


def test_the_smallest_magnitudes_go_first():
    model = tiny_bert()
    smallest = min(float(m.weight.detach().abs().max()) for m, _ in pruning.linear_weights(model))
    pruning.prune_to(model, 0.3)
    kept = torch.cat([m.weight[m.weight != 0].abs() for m, _ in pruning.linear_weights(model)])
    pruned = torch.cat([m.weight_orig[m.weight_mask == 0].abs() for m, _ in pruning.linear_weights(model)])
    assert pruned.max() <= kept.min() and smallest > 0


def test_masks_only_grow_and_training_keeps_the_zeros():
    model = tiny_bert().train()
    pruning.prune_to(model, 0.2)
    mask_before = [m.weight_mask.clone() for m, _ in pruning.linear_weights(model)]
    pruning.prune_to(model, 0.4)
    for (m, _), before in zip(pruning.linear_weights(model), mask_before):
        assert bool((m.weight_mask <= before).all())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        model(**batch(), labels=torch.zeros(16, dtype=torch.long)).loss.backward()
        opt.step()
        opt.zero_grad()
    assert pruning.sparsity(model) == pytest.approx(0.4, abs=1e-4)


def test_masks_survive_a_state_dict_round_trip_and_the_optimizer_lines_up():
    model = tiny_bert()
    opt = torch.optim.AdamW([p for p in model.parameters()], lr=1e-3)
    pruning.prune_to(model, 0.5)
    model(**batch(), labels=torch.zeros(16, dtype=torch.long)).loss.backward()
    opt.step()
    state, opt_state = model.state_dict(), opt.state_dict()
    assert any(k.endswith("weight_mask") for k in state)

    fresh = tiny_bert(seed=7)
    fresh_opt = torch.optim.AdamW([p for p in fresh.parameters()], lr=1e-3)  # built before the masks, as in the recipe
    pruning.restore_masks(fresh, state)
    fresh.load_state_dict(state)
    fresh_opt.load_state_dict(opt_state)
    assert pruning.sparsity(fresh) == pytest.approx(0.5, abs=1e-4)
    assert torch.equal(fresh(**batch()).logits, model.eval()(**batch()).logits)
    # a resumed run at a later step asks for the same ratio: nothing changes
    assert not pruning.maybe_prune(fresh, PruneConfig(ratio=0.5), step=40)


def test_remove_masks_leaves_a_plain_model_with_the_zeros():
    model = tiny_bert()
    pruning.prune_to(model, 0.3)
    pruning.remove_masks(model)
    keys = model.state_dict().keys()
    assert not any("_mask" in k or "_orig" in k for k in keys)
    assert pruning.sparsity(model) == pytest.approx(0.3, abs=1e-4)


def test_cubic_schedule_follows_zhu_and_gupta():
    cfg = PruneConfig(ratio=0.8, schedule="cubic", start_step=10, end_step=110, frequency=10)
    assert pruning.target_ratio(5, cfg) == 0.0
    assert pruning.target_ratio(10, cfg) == 0.0
    # t = 50 of 100: 0.8 * (1 - 0.5^3) = 0.7
    assert pruning.target_ratio(60, cfg) == pytest.approx(0.7)
    assert pruning.target_ratio(65, cfg) == pytest.approx(0.7)  # held between updates
    assert pruning.target_ratio(110, cfg) == pytest.approx(0.8)
    assert pruning.target_ratio(500, cfg) == pytest.approx(0.8)
    ratios = [pruning.target_ratio(s, cfg) for s in range(0, 120)]
    assert ratios == sorted(ratios)


def test_cubic_schedule_applied_step_by_step_reaches_the_target():
    cfg = PruneConfig(ratio=0.6, schedule="cubic", start_step=0, end_step=20, frequency=5)
    model = tiny_bert()
    changed = [s for s in range(25) if pruning.maybe_prune(model, cfg, s)]
    assert changed == [5, 10, 15, 20]
    assert pruning.sparsity(model) == pytest.approx(0.6, abs=1e-4)


def test_oneshot_waits_for_start_step():
    cfg = PruneConfig(ratio=0.3, start_step=4)
    model = tiny_bert()
    assert not pruning.maybe_prune(model, cfg, 3) and pruning.sparsity(model) == 0.0
    assert pruning.maybe_prune(model, cfg, 4)
    assert pruning.sparsity(model) == pytest.approx(0.3, abs=1e-4)


def test_recipe_api_prune_model():
    model = tiny_bert()
    assert pruning.prune_model(model, amount=0.2) is model
    assert pruning.sparsity(model) == pytest.approx(0.2, abs=1e-4)
    assert "bert.encoder.layer.0.attention.self.query.weight" in model.state_dict()
    with pytest.raises(ConfigError, match="amount must be in"):
        pruning.prune_model(model, amount=1.2)


def test_bad_ratio_is_a_config_error():
    with pytest.raises(ConfigError, match=r"prune.ratio must be in \[0, 0.95\], got 1.2"):
        PruneConfig(ratio=1.2)
