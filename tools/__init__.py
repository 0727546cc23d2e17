"""Development tools run from a checkout (`python -m tools.<name>`); never installed with
Haven (pyproject's package discovery takes bot, flows and benchmarks only)."""
