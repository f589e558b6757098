"""Approvals: risky requests wait for a human decision.

One module per concern: ``model`` (the record and who may decide it), ``fingerprint`` (what an
approval is bound to), ``store`` (DynamoDB, conditional writes, the item form),
``authorization`` (who may decide, pure), ``diff`` (what approvers see change), ``service``
(the workflow) and ``gate`` (where the gateway meets it). Slack itself is ``chalicelib.slack``.
"""
