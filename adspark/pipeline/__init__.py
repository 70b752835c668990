"""Spark stages: read tables, call the pure core, write tables."""
