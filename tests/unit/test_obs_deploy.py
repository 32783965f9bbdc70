"""The production wiring agrees with the exporters: every metric the Grafana dashboard queries is
exported by a tier, and Prometheus scrapes each tier on the port compose.yaml gives it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from feed_simulator.metrics import FeedMetrics
from gateway.config import GatewayConfig
from gateway.hub import Hub
from gateway.metrics import GatewayMetrics
from md_service.counters import MdCounters
from md_service.metrics import MdMetrics
from md_service.ownership import Ownership

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = ("_bucket", "_count", "_sum")


def exported_names() -> set[str]:
    md_service = SimpleNamespace(
        counters=MdCounters(), ownership=Ownership(), redis_down_since=None, streams={},
        source=SimpleNamespace(consumer=SimpleNamespace(
            assignment=lambda: [SimpleNamespace(partition=0, offset=-1)],
            position=lambda tps: [SimpleNamespace(partition=0, offset=5)],
            get_watermark_offsets=lambda tp, cached: (0, 9),
        )),
    )  # fmt: skip
    hub = Hub(GatewayConfig(redis_url="redis://127.0.0.1:1/0"))
    hub.counters.count_error("bad_json")  # a labelled family shows samples once it has one
    hub.counters.count_close(1000)
    texts = [
        GatewayMetrics(hub).render(),
        MdMetrics().bind(md_service).render(),  # type: ignore[arg-type]
        FeedMetrics(lambda: (1, 2, 0)).render(),
    ]
    names = set()
    for text in texts:
        for family in text_string_to_metric_families(text.decode()):
            names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_the_grafana_dashboard_queries_is_exported() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/bookcast.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    queried = {m for expr in exprs for m in re.findall(r"\bbookcast_[a-z][a-z_]*[a-z]", expr)}
    regexes = [m for expr in exprs for m in re.findall(r'__name__=~"([^"]+)"', expr)]
    exported = exported_names()
    assert len(queried) >= 15
    missing = sorted(name for name in queried if name not in exported)
    assert missing == [], f"the dashboard queries metrics no tier exports: {missing}"
    for pattern in regexes:
        assert sum(1 for name in exported if re.fullmatch(pattern, name)) >= 2, pattern


def test_prometheus_scrapes_every_tier_on_its_compose_port() -> None:
    scrape = (ROOT / "deploy/prometheus/prometheus.yml").read_text()
    compose = (ROOT / "compose.yaml").read_text()
    for service, variable, port in (
        ("feed", "BOOKCAST_FEED_METRICS_PORT", 9102),
        ("md", "BOOKCAST_MD_METRICS_PORT", 9101),
        ("gateway-1", "BOOKCAST_GATEWAY_METRICS_PORT", 9100),
        ("gateway-2", "BOOKCAST_GATEWAY_METRICS_PORT", 9100),
    ):
        assert f'"{service}:{port}"' in scrape, service
        assert f'{variable}: "{port}"' in compose, variable
    assert "BOOKCAST_METRICS_HOST: 0.0.0.0" in compose  # Prometheus scrapes from another container


def test_the_image_copies_every_package_the_project_installs() -> None:
    """A package left out of the Dockerfile's COPY lines installs nothing and fails at import."""
    root = Path(__file__).resolve().parents[2]
    include = re.search(r"include = \[([^\]]*)\]", (root / "pyproject.toml").read_text())
    assert include is not None
    packages = {name.strip().strip('"').rstrip("*") for name in include.group(1).split(",")}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (root / "Dockerfile").read_text(), re.MULTILINE))
    assert packages and packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
