"""The test suite, a package tree: helpers are imported by full name (tests.integration.stack_helpers)."""
