"""Unit tests of ``gateway.core``: one file per module, ``test_gateway_<module>.py``."""
