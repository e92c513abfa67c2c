"""Benchmarks: what training and decoding cost, measured against baselines (ESPnet, fixed exits)."""
