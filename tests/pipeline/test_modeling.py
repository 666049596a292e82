import pytest

from pipeline.config import ConfigError, ModelConfig
from pipeline.data import LabelMap
from pipeline.modeling import load_model, resolve

LABELS = LabelMap(("a", "b", "c"))


def _trainable(module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def test_freezing_embeddings_and_lowest_layers():
    model = load_model(ModelConfig(name="tiny", freeze_embeddings=True, freeze_layers=1), LABELS, vocab_size=100)
    assert not model.bert.embeddings.word_embeddings.weight.requires_grad
    assert not _trainable(model.bert.encoder.layer[0])
    assert _trainable(model.bert.encoder.layer[1]) and _trainable(model.classifier)


def test_freezing_more_layers_than_the_model_has_is_a_config_error():
    with pytest.raises(ConfigError, match="model.freeze_layers is 3 but tiny has 2 layers"):
        load_model(ModelConfig(name="tiny", freeze_layers=3), LABELS, vocab_size=100)


def test_bundled_minilm_loads_with_a_new_head_and_the_label_map():
    model = load_model(ModelConfig(), LABELS, vocab_size=0)
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert model.config.id2label == {0: "a", 1: "b", 2: "c"}


def test_a_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="without config.json"):
        resolve(str(tmp_path))
