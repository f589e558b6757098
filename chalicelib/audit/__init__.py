"""The tamper-evident audit trail: one hash-chained record per event of a gateway session.

``records`` holds the values, ``chain`` seals and verifies them, ``store`` writes and reads
them in DynamoDB, ``api`` answers the audit routes, ``export`` copies the table's stream to
S3, ``replay`` renders a session for people.
"""
