import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import data
from pipeline.config import ConfigError, DataConfig, ModelConfig
from pipeline.modeling import load_tokenizer

ROWS = [("heart attack", "cardio"), ("colon polyp", "digestive"), ("stroke", "nervous"), ("angina", "cardio")]


def _write(tmp_path, fmt: str, rows=ROWS, name="split"):
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "csv":
        path.write_text("abstract,condition\n" + "".join(f'"{t}",{label}\n' for t, label in rows))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps({"abstract": t, "condition": label}) + "\n" for t, label in rows))
    else:
        pq.write_table(pa.table({"abstract": [t for t, _ in rows], "condition": [label for _, label in rows]}), path)
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_formats_load_with_named_columns_and_sorted_label_ids(tmp_path, fmt):
    path = _write(tmp_path, fmt)
    cfg = DataConfig(train=path, validation=path, test=path, text_column="abstract", label_column="condition")
    splits, labels = data.load_splits(cfg)
    assert labels.names == ("cardio", "digestive", "nervous")
    assert list(splits["train"]["label"]) == [0, 1, 2, 0]
    assert list(splits["test"]["text"])[1] == "colon polyp"


def test_the_vendored_medical_abstracts_load():
    splits, labels = data.load_splits(DataConfig())
    assert {k: len(v) for k, v in splits.items()} == {"train": 1859, "validation": 399, "test": 399}
    assert len(labels.names) == 5 and "neoplasms" in labels.names


def test_missing_column_names_the_key_and_the_columns(tmp_path):
    path = _write(tmp_path, "csv")
    with pytest.raises(ConfigError, match="data.text_column: 'text' is not a column of .*columns: abstract, condition"):
        data.load_splits(DataConfig(train=path, validation=path, test=path, label_column="condition"))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="data.train: .*nope.csv does not exist"):
        data.load_splits(DataConfig(train=str(tmp_path / "nope.csv")))


def test_label_unseen_in_training_is_refused(tmp_path):
    train = _write(tmp_path, "csv", name="train")
    test = _write(tmp_path, "csv", rows=[("x", "renal")], name="test")
    with pytest.raises(ConfigError, match="data.test: label 'renal' does not occur"):
        data.load_splits(DataConfig(train=train, validation=train, test=test, text_column="abstract", label_column="condition"))


def test_tokenisation_is_cached_by_content(tmp_path):
    path = _write(tmp_path, "csv")
    splits, _ = data.load_splits(DataConfig(train=path, validation=path, test=path, text_column="abstract", label_column="condition"))
    tok = load_tokenizer(ModelConfig())
    first = data.tokenize(splits["train"], tok, 16, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 1
    again = data.tokenize(splits["train"], tok, 16, cache_dir=tmp_path / "cache")
    assert list(again["input_ids"]) == list(first["input_ids"])
    assert len(list((tmp_path / "cache").iterdir())) == 1
    data.tokenize(splits["train"], tok, 8, cache_dir=tmp_path / "cache")  # another length, another entry
    assert len(list((tmp_path / "cache").iterdir())) == 2
    assert max(len(ids) for ids in first["input_ids"]) <= 16


def test_s3_uri_reads_through_pyarrow_from_a_moto_server(moto_endpoint, monkeypatch, tmp_path):
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="spotfit-data")
    s3.upload_file(_write(tmp_path, "csv"), "spotfit-data", "med/train.csv")
    host = moto_endpoint.removeprefix("http://")
    uri = f"s3://spotfit-data/med/train.csv?endpoint_override={host}&scheme=http&region=us-east-1"
    cfg = DataConfig(train=uri, validation=uri, test=uri, text_column="abstract", label_column="condition")
    splits, labels = data.load_splits(cfg)
    assert labels.names == ("cardio", "digestive", "nervous")
    assert list(splits["validation"]["text"]) == [t for t, _ in ROWS]
    missing = uri.replace("train.csv", "nope.csv")
    with pytest.raises(ConfigError, match=r"data.train: s3://spotfit-data/med/nope.csv\?.* does not exist"):
        data.load_splits(DataConfig(train=missing))
