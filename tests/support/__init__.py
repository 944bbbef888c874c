"""Helpers shared by the tests: builders and readers, no tests and no fixtures (fixtures live in
the conftest.py files, which call these)."""
