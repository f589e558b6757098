"""Policies: who may do what on which cluster, and what needs a human's approval."""

from chalicelib.policy.compiled import PolicyIndex
from chalicelib.policy.engine import Decision, decide, evaluate, select_policy
from chalicelib.policy.loader import PolicyError, PolicySet, load_policies, load_policy_text
from chalicelib.policy.model import ApprovalSettings, Policy, Rule, Subject

__all__ = [
    "ApprovalSettings",
    "Decision",
    "Policy",
    "PolicyError",
    "PolicyIndex",
    "PolicySet",
    "Rule",
    "Subject",
    "decide",
    "evaluate",
    "load_policies",
    "load_policy_text",
    "select_policy",
]
