"""Data: CSV, JSON Lines or Parquet, local or s3://, read through pyarrow into `datasets`,
labels mapped to ids, tokenised once and cached on disk.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.json as pa_json
import pyarrow.parquet as pa_parquet

from pipeline.config import ConfigError, DataConfig

SPLITS = ("train", "validation", "test")
CACHE_DIR = Path(os.environ.get("SPOTFIT_CACHE", Path.home() / ".cache" / "spotfit")) / "tokenized"


def _filesystem(uri: str) -> tuple[pa_fs.FileSystem, str]:
    if "://" in uri:
        return pa_fs.FileSystem.from_uri(uri)
    return pa_fs.LocalFileSystem(), str(Path(uri).resolve())


def read_table(uri: str, key: str = "data") -> pa.Table:
    """One file as an Arrow table. `.json` is read as JSON Lines, one object a line."""
    fs, path = _filesystem(uri)
    if fs.get_file_info(path).type != pa_fs.FileType.File:
        raise ConfigError(f"{key}: {uri} does not exist or is not a file")
    if path.endswith(".parquet"):
        return pa_parquet.read_table(path, filesystem=fs)
    with fs.open_input_stream(path) as stream:
        if path.endswith(".csv"):
            return pa_csv.read_csv(stream)
        return pa_json.read_json(stream)


def _label_key(value) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


@dataclass(frozen=True)
class LabelMap:
    names: tuple[str, ...]

    @classmethod
    def from_values(cls, values) -> "LabelMap":
        return cls(tuple(str(v) for v in sorted(set(values), key=_label_key)))

    @property
    def id_of(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def to_json(self) -> dict:
        return {"id2label": dict(enumerate(self.names)), "label2id": self.id_of}


def load_splits(cfg: DataConfig) -> tuple[dict[str, datasets.Dataset], LabelMap]:
    """Read the three splits, check the columns, map labels to ids (sorted names of the train split)."""
    tables = {split: read_table(getattr(cfg, split), f"data.{split}") for split in SPLITS}
    for split, table in tables.items():
        for key in ("text_column", "label_column"):
            column = getattr(cfg, key)
            if column not in table.column_names:
                raise ConfigError(f"data.{key}: {column!r} is not a column of {getattr(cfg, split)}; columns: {', '.join(table.column_names)}")
    limits = {"train": cfg.max_train_samples, "validation": cfg.max_eval_samples, "test": cfg.max_eval_samples}
    tables = {s: t.slice(0, limits[s]) if limits[s] else t for s, t in tables.items()}
    labels = LabelMap.from_values(tables["train"].column(cfg.label_column).to_pylist())
    out = {}
    for split, table in tables.items():
        raw = table.column(cfg.label_column).to_pylist()
        unknown = sorted({str(v) for v in raw} - set(labels.names))
        if unknown:
            raise ConfigError(f"data.{split}: label {unknown[0]!r} does not occur in the training split; labels: {', '.join(labels.names)}")
        ids = [labels.id_of[str(v)] for v in raw]
        texts = [str(t) if t is not None else "" for t in table.column(cfg.text_column).to_pylist()]
        out[split] = datasets.Dataset.from_dict({"text": texts, "label": ids})
    return out, labels


def _fingerprint(ds: datasets.Dataset, tokenizer, max_length: int) -> str:
    h = hashlib.sha256()
    h.update(f"{type(tokenizer).__name__}|{tokenizer.name_or_path}|{len(tokenizer)}|{max_length}".encode())
    for text, label in zip(ds["text"], ds["label"]):
        h.update(text.encode())
        h.update(label.to_bytes(4, "little"))
    return h.hexdigest()[:24]


def tokenize(ds: datasets.Dataset, tokenizer, max_length: int, cache_dir: Path = CACHE_DIR) -> datasets.Dataset:
    """Token ids without padding (the collator pads each batch to its longest), cached by content."""
    target = cache_dir / _fingerprint(ds, tokenizer, max_length)
    if not target.exists():
        encoded = datasets.Dataset.from_dict({"label": list(ds["label"]), **tokenizer(list(ds["text"]), truncation=True, max_length=max_length)})
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache_dir))
        encoded.save_to_disk(str(tmp))
        try:
            tmp.rename(target)  # atomic: workers on one node may race to write the same entry
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return datasets.load_from_disk(str(target))


def collator(tokenizer):
    """Pads each batch to its longest row; returns a plain dict (Ray's device mover walks dicts,
    not the collator's UserDict)."""
    from transformers import DataCollatorWithPadding

    pad = DataCollatorWithPadding(tokenizer)
    return lambda features: dict(pad(features))
