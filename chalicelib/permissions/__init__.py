"""What a caller may do, answered from their policy: ``whoami`` (a summary of the session and its
rules) and ``access_review`` (kubectl auth can-i, SelfSubjectAccessReview and RulesReview)."""
