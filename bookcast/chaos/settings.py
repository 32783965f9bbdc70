"""What one chaos run does: its size, its pace and the tiers' settings, decided once.

``--quick`` is the CI pass (about a minute of faults); the default run is longer and
repeats every fault kind. The tiers' settings differ from their defaults only where a
fault would otherwise take long to show (session timeout, slow-client close), and each
difference is named here so the report can print it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mdcore.instruments import default_pairs

DEFAULT_DURATION_S = 300.0
QUICK_DURATION_S = 55.0


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    """One run: how long the faults go on, how many of everything, and the tiers' overrides."""

    duration_s: float = DEFAULT_DURATION_S
    seed: int = 1
    quick: bool = False
    pairs: tuple[str, ...] = field(default_factory=lambda: tuple(default_pairs(12)))
    partitions: int = 8
    md_instances: int = 2
    gateways: int = 2
    clients: int = 24
    # exchange events/s over all pairs: ~8 per pair per second, so every pair moves in most windows,
    # while the verifying clients (all in this process) keep up on a busy 2-core machine
    feed_rate: float = 100.0
    stallers: int = 3  # raw connections per client_stall fault that subscribe and never read
    garbage: int = 40  # garbage connections per burst
    heal_timeout_s: float = 60.0  # a fault not healed within this long (after it ended) failed
    settle_timeout_s: float = 60.0  # wait for the stack to be whole again before the next fault
    final_timeout_s: float = 60.0  # wait for quiet after the feed is frozen
    tier_settings: dict[str, str] = field(
        default_factory=lambda: {
            # a frozen or killed md_service's partitions move within ~2 s, not 6 (tests use this too)
            "md_session_timeout_ms": "2000",
            "status_bus_s": "0.5",  # md_service's status (counters, partitions) twice a second
            "md_redis_timeout_ms": "1000",
            # a client that never reads is closed after 4 s over the mark, not 10
            "gateway_slow_close_s": "4",
            "gateway_workers": "1",
            # one exporter per process would collide on the default ports; counters come from
            # /health and md_service's status key instead
            "md_metrics_port": "0",
            "gateway_metrics_port": "0",
            "feed_metrics_port": "0",
        }
    )

    @classmethod
    def for_run(cls, duration_s: float | None, seed: int, quick: bool) -> ChaosSettings:
        """The default run, or the quick CI pass (fewer clients and smaller bursts)."""
        if quick:
            return cls(
                duration_s=duration_s or QUICK_DURATION_S,
                seed=seed,
                quick=True,
                clients=16,
                garbage=24,
                stallers=2,
                heal_timeout_s=30.0,
                settle_timeout_s=30.0,
                final_timeout_s=40.0,
            )
        return cls(duration_s=duration_s or DEFAULT_DURATION_S, seed=seed)

    def overrides(self) -> list[str]:
        """The tiers' settings this run changes, as ``BOOKCAST_X=v`` for the report."""
        return [f"BOOKCAST_{key.upper()}={value}" for key, value in sorted(self.tier_settings.items())]
