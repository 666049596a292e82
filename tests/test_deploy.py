"""deploy/: Dockerfile, KubeRay manifests, Grafana dashboard and Prometheus config, by parsing.

No Docker daemon or Kubernetes API here, so each file is checked for what its consumer requires:
the fields KubeRay's CRDs need, labels Ray's own parser accepts, a RayJob entrypoint the spotfit
CLI parses with a config that loads, metric names spotfit and Ray really export.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
LABEL_KEYS = {"spotfit/instance-type", "spotfit/market", "spotfit/zone", "spotfit/region"}


def pyproject_pin(package: str) -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(rf'"{re.escape(package)}(?:\[[^\]]*\])?==([0-9.]+)\.\*"', text).group(1)


# ---------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_variants_and_pins():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG VARIANT=cpu$", text, re.M)
    ray_version = re.search(r"^ARG RAY_VERSION=(\S+)$", text, re.M).group(1)
    assert ray_version.startswith(pyproject_pin("ray") + ".")  # one Ray version everywhere
    assert re.search(r"^FROM rayproject/ray:\$\{RAY_VERSION\}-py311-\$\{VARIANT\}$", text, re.M)
    torch = pyproject_pin("torch")
    assert text.count(f'"torch=={torch}.*"') == 2  # both variants, same version as pyproject
    assert 'if [ "$VARIANT" = "cpu" ]' in text
    assert "pip install --no-cache-dir -e ." in text
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret|RAY_AUTH_TOKEN", text, re.I)


def test_dockerfile_copies_only_what_exists():
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources = [w for w in line.split()[1:-1] if not w.startswith("--")]
            for src in sources:
                if src.endswith("*"):
                    continue  # optional (README.md* while the README is being written)
                assert (ROOT / src).exists(), line
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "runs", ".git"} <= set(ignored)


# ---------------------------------------------------------------------------------------------
# KubeRay


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / "kuberay" / name).read_text())


def check_cluster_spec(spec: dict) -> None:
    """What KubeRay's RayCluster CRD requires, plus spotfit's rules (auth, labels, spot GPUs)."""
    from ray._private.label_utils import parse_node_labels_string

    assert spec["rayVersion"].startswith(pyproject_pin("ray") + ".")
    assert spec["authOptions"] == {"mode": "token"}
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    assert all(isinstance(v, str) for v in head["rayStartParams"].values())  # CRD: map of strings
    assert head["rayStartParams"]["num-cpus"] == "0"  # no training work on the head
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"  # never a public LoadBalancer
    head_labels = parse_node_labels_string(head["rayStartParams"]["labels"])
    assert set(head_labels) == LABEL_KEYS and head_labels["spotfit/market"] == "on-demand"
    check_pod(head["template"], "ray-head")
    assert head["template"]["spec"]["nodeSelector"]["karpenter.sh/capacity-type"] == "on-demand"

    (group,) = spec["workerGroupSpecs"]
    assert group["groupName"]
    assert 0 <= group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
    assert all(isinstance(v, str) for v in group["rayStartParams"].values())
    labels = parse_node_labels_string(group["rayStartParams"]["labels"])
    assert set(labels) == LABEL_KEYS and labels["spotfit/market"] == "spot"
    pod = group["template"]["spec"]
    check_pod(group["template"], "ray-worker")
    # the labels must be true: the node selector pins the market, type and zone they claim
    assert pod["nodeSelector"] == {
        "node.kubernetes.io/instance-type": labels["spotfit/instance-type"],
        "karpenter.sh/capacity-type": "spot",
        "topology.kubernetes.io/zone": labels["spotfit/zone"],
    }
    assert {t["key"] for t in pod["tolerations"]} >= {"nvidia.com/gpu", "karpenter.sh/capacity-type"}
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


def check_pod(template: dict, name: str) -> None:
    containers = template["spec"]["containers"]
    assert containers and containers[0]["name"] == name and containers[0]["image"]


def test_raycluster():
    doc = load("raycluster.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster"
    assert doc["metadata"]["name"]
    check_cluster_spec(doc["spec"])
    assert doc["spec"]["enableInTreeAutoscaling"] is True


def test_rayjob_runs_a_spotfit_train_that_parses():
    from orchestrator.cli import build_parser
    from pipeline.config import load_config

    doc = load("rayjob.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    spec = doc["spec"]
    check_cluster_spec(spec["rayClusterSpec"])
    assert spec["shutdownAfterJobFinishes"] is True  # no cluster left billing after the run
    assert yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["spotfit", "train"]
    args = build_parser().parse_args(argv[1:])
    cfg = load_config(ROOT / args.config, args.overrides)
    assert cfg.num_workers <= spec["rayClusterSpec"]["workerGroupSpecs"][0]["maxReplicas"]
    assert cfg.storage_path.startswith("s3://")  # checkpoints outlive a reclaimed pod


# ---------------------------------------------------------------------------------------------
# Grafana and Prometheus


def test_grafana_dashboard_queries_real_metrics():
    from orchestrator import tracker
    from pipeline import recipe

    dash = json.loads((DEPLOY / "grafana" / "spotfit-dashboard.json").read_text())
    assert dash["uid"] and dash["title"] and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b((?:ray|autoscaler)_[a-z_]+)\{", e)}
    assert len(used) == len(exprs)  # every query names one metric this test knows about
    # Ray prefixes user metrics with ray_; the tracker's gauges are spotfit's spend.
    tracker_metrics = {f"ray_{name}" for name in tracker._GAUGE_TAGS}
    training = {f"ray_spotfit_{name}" for name in recipe._Dashboard.NAMES}  # the recipe's gauges
    ray_builtin = {"ray_node_gpus_utilization", "autoscaler_active_nodes"}
    assert used <= tracker_metrics | training | ray_builtin, used - tracker_metrics - training - ray_builtin
    assert {"ray_spotfit_spend_usd_total", "ray_spotfit_usd_per_hour_total"} <= used
    assert {"ray_spotfit_train_samples_per_second", "ray_spotfit_train_loss", "ray_spotfit_val_accuracy"} <= used
    for p in dash["panels"]:
        grid = p["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24  # Grafana's 24-column grid


def test_prometheus_scrapes_rays_service_discovery_file():
    conf = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = conf["scrape_configs"]
    (sd,) = job["file_sd_configs"]
    from ray._private.ray_constants import PROMETHEUS_SERVICE_DISCOVERY_FILE

    assert sd["files"] == [f"/tmp/ray/{PROMETHEUS_SERVICE_DISCOVERY_FILE}"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_accepts_the_config():
    result = subprocess.run(["promtool", "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
