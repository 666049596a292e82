"""INT8 dynamic quantization of the Linear layers, for cheap CPU inference after training.

Dynamic: weights are stored as int8 with one scale per tensor, activations are quantized on the
fly per batch, so no calibration data is needed. It speeds up CPU inference only (fbgemm/onednn
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
from transformers import AutoConfig, AutoModelForSequenceClassification

WEIGHTS_FILE = "model_int8.pt"
INFO_FILE = "quantization.json"


def quantize_model(model: nn.Module) -> nn.Module:
    """The recipe API: a copy of `model` with every nn.Linear as a dynamic int8 Linear.

    Embeddings and LayerNorm stay fp32 (for MiniLM the word embeddings are half the weights, so
    the file shrinks by less than 4x). The input model is left as it was.
    """
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch points at torchao, not installed here
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=False)


def save_quantized(qmodel: nn.Module, fp32_folder: Path, folder: Path) -> None:
    """Write the int8 state dict beside a copy of the fp32 folder's config, tokenizer and labels.

    save_pretrained cannot write packed int8 weights; `load_quantized` rebuilds the architecture
    from config.json, quantizes it and loads this state dict.
    """
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(fp32_folder, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    torch.save(qmodel.state_dict(), folder / WEIGHTS_FILE)
    (folder / INFO_FILE).write_text(json.dumps({"scheme": "dynamic int8, nn.Linear", "torch": torch.__version__}) + "\n")


def load_quantized(folder: Path) -> nn.Module:
    config = AutoConfig.from_pretrained(folder)
    skeleton = AutoModelForSequenceClassification.from_config(config)
    qmodel = quantize_model(skeleton)
    qmodel.load_state_dict(torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=False))
    return qmodel.eval()
