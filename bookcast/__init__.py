"""bookcast: the runnable whole (embedded servers, CLI) around the market-data fan-out tiers."""
