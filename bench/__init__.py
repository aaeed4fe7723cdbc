"""Benchmarks: gen against Docker Compose v2 and a Docker SDK floor. Run with `just bench`."""
