"""Pure domain code: image validation and normalisation, registration and NIK rules, screening, reason codes.

Nothing in this package imports Kafka, HTTP, S3 or metrics libraries: bytes and dicts go in, results or
typed errors (:class:`processors.reasons.Rejected`) come out.
"""
