"""Benchmarks: every hot path measured side by side with its floor (issue 12)."""
