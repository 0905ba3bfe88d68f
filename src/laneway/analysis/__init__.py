"""Canary analysis: canary against baseline, by statistics. Pure: no I/O, no clock."""
