"""INT8 dynamic quantization of the Linear layers, for cheap CPU inference after training.

Dynamic: Linear weights are stored as int8 with one scale per output channel, activations are
quantized on the fly per batch, so no calibration data is needed. Per-channel scales cost nothing
in speed and kept MiniLM within a point of fp32 on the medical abstracts, where one scale per
tensor lost 2.5 points (bench/compression.py, same model). The embedding tables, half of
MiniLM's weights, are stored weight-only int8 with one scale per row (looked up, then
dequantized): without them the file cannot shrink below ~0.63x. It speeds up CPU inference only (fbgemm/onednn
int8 GEMMs); on a GPU these modules do not run. torchao's newer API is not installed here and
`torch.ao.quantization.quantize_dynamic` still ships in torch 2.13, so that is what we use.
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.ao.quantization import qconfig as qconf
from transformers import AutoConfig, AutoModelForSequenceClassification

WEIGHTS_FILE = "model_int8.pt"
INFO_FILE = "quantization.json"
SCHEME = "nn.Linear: dynamic int8, per-channel weights; vocabulary nn.Embedding: weight-only int8 per row"
MIN_EMBEDDING_ROWS = 1024


def quantize_model(model: nn.Module, embeddings: bool = True) -> nn.Module:
    """The recipe API: an INT8 copy of `model` for CPU inference; the input is left as it was.

    Every nn.Linear becomes a dynamic int8 Linear (per-channel weight scales); with `embeddings`,
    every vocabulary-sized nn.Embedding stores int8 rows. LayerNorm and biases stay fp32.
    """
    qconfig: dict = {nn.Linear: qconf.per_channel_dynamic_qconfig}
    if embeddings:
        # vocabulary tables only: position and token-type tables are small, and BERT looks them up
        # with expanded (non-contiguous) index buffers that the int8 lookup kernel refuses
        for name, module in model.named_modules():
            if isinstance(module, nn.Embedding) and module.num_embeddings >= MIN_EMBEDDING_ROWS:
                qconfig[name] = qconf.float_qparams_weight_only_qconfig
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch points at torchao (not installed here) on every call
        return torch.ao.quantization.quantize_dynamic(model, qconfig, inplace=False)


def save_quantized(qmodel: nn.Module, fp32_folder: Path, folder: Path) -> None:
    """Write the int8 state dict beside a copy of the fp32 folder's config, tokenizer and labels.

    save_pretrained cannot write packed int8 weights; `load_quantized` rebuilds the architecture
    from config.json, quantizes it and loads this state dict.
    """
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(fp32_folder, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    torch.save(qmodel.state_dict(), folder / WEIGHTS_FILE)
    (folder / INFO_FILE).write_text(json.dumps({"scheme": SCHEME, "torch": torch.__version__}) + "\n")


def load_quantized(folder: Path) -> nn.Module:
    config = AutoConfig.from_pretrained(folder)
    skeleton = AutoModelForSequenceClassification.from_config(config)
    qmodel = quantize_model(skeleton)
    qmodel.load_state_dict(torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=False))
    return qmodel.eval()
