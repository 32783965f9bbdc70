"""The benchmark command's own checks (the measurements themselves need a broker)."""

from feed_simulator import bench
from feed_simulator.market import MarketParams


def test_generation_alone_is_measured():
    events, changes, per_cpu = bench.measure_generate(
        ["BTC-USD", "ETH-USD"], 0.05, MarketParams(max_levels=30)
    )
    assert events > 0 and changes > events  # several changes per event
    assert per_cpu >= changes * 0.5  # it ran on at most one core


def test_bad_arguments_and_a_missing_broker_exit_2(capsys):
    assert bench.main(["--repeats", "0", "--bootstrap", "h:1"]) == 2
    assert "must be positive" in capsys.readouterr().err
    assert bench.main([]) == 2
    assert "bookcast bench feed" in capsys.readouterr().err
