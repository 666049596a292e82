"""INT8 dynamic quantization on the tiny BERT: same predictions, smaller file, round trip."""
import torch
from torch import nn

from pipeline import footprint, quantization
from tests.pipeline.tiny import batch, tiny_bert


def test_int8_gives_the_same_argmax_on_most_of_a_fixed_batch():
    model = tiny_bert(vocab=2048)
    qmodel = quantization.quantize_model(model)
    x = batch(n=64)
    with torch.inference_mode():
        agree = (model(**x).logits.argmax(-1) == qmodel(**x).logits.argmax(-1)).float().mean().item()
    assert agree >= 0.9
    assert not any(type(m) is nn.Linear for m in qmodel.modules())
    assert type(qmodel.bert.embeddings.word_embeddings) is not nn.Embedding
    assert type(qmodel.bert.embeddings.position_embeddings) is nn.Embedding  # 64 rows: left fp32
    assert any(type(m) is nn.Linear for m in model.modules())  # the input is untouched
    only_linear = quantization.quantize_model(model, embeddings=False)
    assert any(type(m) is nn.Embedding for m in only_linear.modules())


def test_save_and_load_round_trip_and_the_file_is_smaller(tmp_path):
    model = tiny_bert(vocab=2048)
    model.save_pretrained(tmp_path / "fp32")
    qmodel = quantization.quantize_model(model)
    quantization.save_quantized(qmodel, tmp_path / "fp32", tmp_path / "int8")
    loaded = quantization.load_quantized(tmp_path / "int8")
    x = batch()
    with torch.inference_mode():
        assert torch.equal(loaded(**x).logits, qmodel(**x).logits)
    # tiny BERT: Linear and embedding weights go from 4 bytes to 1 (plus a scale per channel or
    # row, and some pickling overhead per packed tensor)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear)) + 2048 * 32
    saved = footprint.weights_mb(tmp_path / "fp32") - footprint.weights_mb(tmp_path / "int8")
    assert saved * 1e6 > 0.6 * 3 * weights
