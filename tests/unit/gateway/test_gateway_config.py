"""Gateway settings: defaults, environment, flags over environment, and failing fast by name."""

from __future__ import annotations

import argparse

import pytest

from gateway.cli import _passthrough
from gateway.config import add_arguments, default_workers, load_config
from mdcore.settings import SettingError


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv or [])


def test_defaults_and_environment() -> None:
    cfg = load_config(parse(), {"REDIS_URL": "redis://r:6379/0"})
    assert cfg.workers == default_workers() and not cfg.reuse_port
    assert (cfg.max_frame_bytes, cfg.max_pairs, cfg.high_water_bytes) == (4096, 100, 1 << 20)
    assert cfg.tokens == frozenset() and cfg.origins == frozenset()
    env = {
        "REDIS_URL": "redis://r:6379/0",
        "BOOKCAST_GATEWAY_TOKENS": " a, b ,,",
        "BOOKCAST_GATEWAY_ORIGINS": "https://x.example",
        "BOOKCAST_GATEWAY_WORKERS": "3",
        "BOOKCAST_GATEWAY_OP_RATE": "2.5",
        "BOOKCAST_GATEWAY_MAX_CONNECTIONS_PER_IP": "0",
    }
    cfg = load_config(parse(["--workers", "2", "--port", "0"]), env)
    assert cfg.tokens == {"a", "b"} and cfg.origins == {"https://x.example"}
    assert cfg.workers == 2 and cfg.port == 0 and cfg.op_rate == 2.5 and cfg.max_connections_per_ip == 0


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({}, "REDIS_URL"),
        ({"BOOKCAST_GATEWAY_MAX_FRAME": "10"}, "BOOKCAST_GATEWAY_MAX_FRAME"),
        ({"BOOKCAST_GATEWAY_HIGH_WATER": "8192", "BOOKCAST_GATEWAY_LOW_WATER": "8192"}, "LOW_WATER"),
        ({"BOOKCAST_GATEWAY_OP_RATE": "nan"}, "BOOKCAST_GATEWAY_OP_RATE"),
        ({"BOOKCAST_GATEWAY_WORKERS": "0"}, "BOOKCAST_GATEWAY_WORKERS"),
        ({"BOOKCAST_PAIRS": "NOPE-USD"}, "BOOKCAST_PAIRS"),
    ],
)
def test_a_bad_setting_fails_fast_naming_it(env: dict[str, str], key: str) -> None:
    base = {} if key == "REDIS_URL" else {"REDIS_URL": "redis://r:6379/0"}
    with pytest.raises(SettingError, match=key):
        load_config(parse(), {**base, **env})


def test_workers_inherit_every_flag_but_their_own() -> None:
    argv = ["--workers", "4", "--redis-url", "redis://x/0", "--port=9000", "--host", "::", "--reuse-port"]
    assert _passthrough(argv) == ["--redis-url", "redis://x/0"]
