"""Measurement: counting, timing and comparing operators and models."""
