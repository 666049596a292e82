"""A tiny BERT classifier (2 layers, hidden 32, vocab 100) for technique tests: builds in ms."""
import torch
from transformers import BertConfig, BertForSequenceClassification


def tiny_bert(seed: int = 0, layers: int = 2, num_labels: int = 3, vocab: int = 100) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels)
    return BertForSequenceClassification(config).eval()


def batch(n: int = 16, length: int = 12, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(1, 100, (n, length), generator=g), "attention_mask": torch.ones(n, length, dtype=torch.long)}
