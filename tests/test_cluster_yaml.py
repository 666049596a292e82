"""cluster.yaml passes the checks `ray up` runs, and says what spotfit relies on."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
LABEL_KEYS = {"spotfit/instance-type", "spotfit/market", "spotfit/zone", "spotfit/region"}


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def ray_up_validate(config: dict) -> dict:
    """What `ray up` does before it talks to AWS: prepare_config, then validate_config."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_validates_with_rays_own_validator(raw):
    prepared = ray_up_validate(raw)
    types = prepared["available_node_types"]
    assert set(types) == {"head_cpu", "gpu_spot", "gpu_on_demand"}
    # prepare_config merged setup_commands into both head and worker setup.
    assert prepared["worker_setup_commands"][-1].endswith("-e ~/spotfit")
    assert types["head_cpu"]["max_workers"] == 0  # filled by prepare_config


def test_validator_rejects_a_broken_copy(raw):
    """The validation above can fail: a typo'd key in a node type is refused."""
    import jsonschema

    broken = copy.deepcopy(raw)
    broken["available_node_types"]["gpu_spot"]["min_worker"] = 1
    with pytest.raises(jsonschema.ValidationError):
        ray_up_validate(broken)
    broken = copy.deepcopy(raw)
    broken["available_node_types"]["gpu_spot"]["labels"]["spotfit/market"] = 1  # labels are strings
    with pytest.raises(jsonschema.ValidationError):
        ray_up_validate(broken)


def test_head_is_on_demand_and_takes_no_training_work(raw):
    head = raw["available_node_types"][raw["head_node_type"]]
    assert head["resources"]["CPU"] == 0
    assert "GPU" not in head["resources"]
    assert "InstanceMarketOptions" not in head["node_config"]
    assert head["labels"]["spotfit/market"] == "on-demand"


def test_spot_and_on_demand_gpu_types(raw):
    types = raw["available_node_types"]
    spot, od = types["gpu_spot"], types["gpu_on_demand"]
    assert spot["node_config"]["InstanceType"] == "g5.xlarge"
    assert spot["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert "InstanceMarketOptions" not in od["node_config"]
    assert spot["min_workers"] == 0 < spot["max_workers"] <= raw["max_workers"]
    assert od["min_workers"] == 0 < od["max_workers"]
    assert spot["resources"] == od["resources"]  # a run moves between them unchanged
    assert spot["priority"] > od["priority"]  # plain GPU requests prefer spot
    assert spot["labels"]["spotfit/market"] == "spot"
    assert od["labels"]["spotfit/market"] == "on-demand"
    assert 0 < raw["idle_timeout_minutes"] <= 30


def test_every_node_type_carries_the_cost_trackers_labels(raw):
    region = raw["provider"]["region"]
    zones = raw["provider"]["availability_zone"].split(",")
    for name, node_type in raw["available_node_types"].items():
        labels = node_type["labels"]
        assert set(labels) == LABEL_KEYS, name
        assert labels["spotfit/instance-type"] == node_type["node_config"]["InstanceType"], name
        assert labels["spotfit/region"] == region, name
        # One zone per type: a static label is only true if the type can launch in one zone.
        assert zones == [labels["spotfit/zone"]], name
        assert labels["spotfit/market"] in ("spot", "on-demand"), name


def test_token_auth_and_loopback_dashboard(raw):
    head_cmd = raw["head_start_ray_commands"][-1]
    worker_cmd = raw["worker_start_ray_commands"][-1]
    assert "RAY_AUTH_MODE=token ray start --head" in head_cmd
    assert "--dashboard-host=127.0.0.1" in head_cmd
    assert "RAY_AUTH_MODE=token ray start --address=" in worker_cmd
    # The token travels as a file mount from the laptop, never as a value in the config.
    assert raw["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_no_secrets_and_installs_spotfit(raw):
    text = CLUSTER_YAML.read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)  # AWS access key ids
    for word in ("aws_access_key_id", "aws_secret_access_key", "RAY_AUTH_TOKEN="):
        assert word.lower() not in text.lower()
    for name in ("gpu_spot", "gpu_on_demand"):
        assert "IamInstanceProfile" in raw["available_node_types"][name]["node_config"]
    assert raw["file_mounts"]["~/spotfit"] == "."
    assert any("-e ~/spotfit" in cmd for cmd in raw["setup_commands"])
    assert {"**/.venv", "**/runs", "**/.git"} <= set(raw["rsync_exclude"])


def uncommented_keys(text: str) -> list[str]:
    """Keys with no comment on their line or on the line above."""
    missing, previous = [], ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            previous = ""
            continue
        key = re.match(r"^\s*(?:- )?([\w./~\-\"']+):(\s|$)", line)
        if key and "#" not in line and not previous.startswith("#"):
            missing.append(f"{number}: {stripped}")
        previous = stripped
    return missing


def test_every_key_has_a_comment():
    assert uncommented_keys("a: 1  # why\n# why\nb:\n  c: 2\n") == ["4: c: 2"]
    assert uncommented_keys(CLUSTER_YAML.read_text()) == []
