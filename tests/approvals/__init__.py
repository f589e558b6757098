"""Tests of the approvals core (chalicelib/approvals)."""
