"""Kafka consumer workers: run processors, persist to MinIO, publish outcomes, dead-letter; commit last."""
