import pytest

from pipeline.config import ConfigError, TrainConfig, build, load_config, parse_overrides


def test_defaults_build():
    cfg = build(TrainConfig, {})
    assert cfg.num_workers == 2 and cfg.optim.lr == 5e-5 and cfg.grad_compression == "none"


def test_overrides_are_typed_and_nested():
    cfg = build(TrainConfig, parse_overrides(["optim.lr=1e-4", "num_workers=3", "model.freeze_embeddings=true", "name=abc"]))
    assert cfg.optim.lr == pytest.approx(1e-4)
    assert cfg.num_workers == 3 and cfg.model.freeze_embeddings is True and cfg.name == "abc"


def test_load_config_applies_overrides_on_yaml():
    cfg = load_config("configs/tiny.yaml", ["grad_compression=fp16", "optim.epochs=5"])
    assert cfg.model.name == "tiny" and cfg.grad_compression == "fp16" and cfg.optim.epochs == 5


@pytest.mark.parametrize(
    "data, message",
    [
        ({"num_wrokers": 2}, "unknown key num_wrokers; allowed:"),
        ({"optim": {"bogus": 1}}, "unknown key optim.bogus"),
        ({"optim": {"lr": "fast"}}, "optim.lr must be a number, got 'fast'"),
        ({"optim": {"lr": 2.0}}, "optim.lr must be in (0, 1), got 2.0"),
        ({"num_workers": 1.5}, "num_workers must be an integer"),
        ({"num_workers": True}, "num_workers must be an integer"),
        ({"precision": "fp8"}, "precision must be one of auto, fp32, bf16, fp16"),
        ({"grad_compression": "zip"}, "grad_compression must be one of none, fp16, bf16, powersgd"),
        ({"powersgd": {"warmup_steps": 1}}, "powersgd.warmup_steps must be >= 2"),
        ({"prune": {"ratio": 1.2}}, "prune.ratio must be in [0, 0.95], got 1.2"),
        ({"distill": {"alpha": -1}}, "distill.alpha must be in [0, 1], got -1"),
        ({"distill": {"temperature": 0}}, "distill.temperature must be > 0"),
        ({"data": {"train": "x.txt"}}, "data.train must end in .csv, .jsonl, .json or .parquet"),
        ({"model": "minilm"}, "model must be a mapping"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        build(TrainConfig, data)
    assert message in str(err.value)


def test_set_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="--set takes key=value"):
        parse_overrides(["optim.lr"])


def test_invalid_yaml_names_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\noptim: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)
