"""Tests of the pure strategies."""
