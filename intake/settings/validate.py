"""The checks across fields of a loaded tree: ranges, orderings, formats (keys, origins) and the size chain."""

from __future__ import annotations

import re

from intake.auth import parse_client_keys
from intake.crypto import CryptoError, parse_keks
from intake.settings.fields import SettingsError
from intake.settings.sections import KiB, Settings

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _parses_keks(text: str) -> bool:
    try:
        parse_keks(text)
    except CryptoError:
        return False
    return True


def validate(s: Settings) -> None:
    checks: list[tuple[bool, str]] = [
        (len(s.security.status_token_key) >= 32, "INTAKE_STATUS_TOKEN_KEY must be at least 32 characters"),
        (len(s.security.nik_pepper) >= 32, "INTAKE_NIK_PEPPER must be at least 32 characters"),
        (s.security.auth_max_skew_s > 0, "INTAKE_AUTH_MAX_SKEW_S must be positive"),
        (s.security.data_key_cache_entries >= 0, "INTAKE_DATA_KEY_CACHE_ENTRIES must be >= 0"),
        (s.security.data_key_cache_s >= 0, "INTAKE_DATA_KEY_CACHE_S must be >= 0"),
        (s.security.data_key_timeout_s > 0, "INTAKE_DATA_KEY_TIMEOUT_S must be positive"),
        (s.security.auth_max_nonces >= 1, "INTAKE_AUTH_MAX_NONCES must be >= 1"),
        (
            _parses_keks(s.security.data_keks),
            "INTAKE_DATA_KEKS must list `kid:base64key` entries of 32-byte keys with distinct ids",
        ),
        (
            all(_ORIGIN.match(o) for o in s.http.cors_origin_list),
            "INTAKE_CORS_ORIGINS must list origins like https://daftar.example.go.id",
        ),
        (s.kafka.audit_retention_ms > 0, "INTAKE_AUDIT_RETENTION_MS must be positive"),
        (
            bool(s.kafka.ssl_certfile) == bool(s.kafka.ssl_keyfile),
            "INTAKE_KAFKA_SSL_CERTFILE and INTAKE_KAFKA_SSL_KEYFILE must be set together",
        ),
        (
            not s.kafka.ssl_certfile or bool(s.kafka.ssl_cafile),
            "INTAKE_KAFKA_SSL_CERTFILE needs INTAKE_KAFKA_SSL_CAFILE (client certificates only travel over TLS)",
        ),
        (
            s.kafka.registrations_retention_ms == -1 or s.kafka.registrations_retention_ms > 0,
            "INTAKE_REGISTRATIONS_RETENTION_MS must be -1 (compacted only) or positive",
        ),
        (s.wave.export_window >= 1, "INTAKE_EXPORT_WINDOW must be >= 1"),
        (s.security.key_rotation_window >= 1, "INTAKE_KEY_ROTATION_WINDOW must be >= 1"),
        (s.limits.max_photo_bytes > 0, "INTAKE_MAX_PHOTO_BYTES must be positive"),
        (s.limits.max_registration_bytes > 0, "INTAKE_MAX_REGISTRATION_BYTES must be positive"),
        (
            s.limits.envelope_overhead_bytes >= s.limits.max_registration_bytes + 4 * KiB,
            "INTAKE_ENVELOPE_OVERHEAD_BYTES must exceed the registration limit by at least 4 KiB",
        ),
        (s.kafka.partitions >= 1, "INTAKE_TOPIC_PARTITIONS must be >= 1"),
        (
            s.kafka.producer in ("aiokafka", "confluent", "rdkafka"),
            "INTAKE_KAFKA_PRODUCER must be aiokafka, confluent or rdkafka",
        ),
        (s.kafka.replication_factor >= 1, "INTAKE_TOPIC_REPLICATION must be >= 1"),
        (1 <= s.http.port <= 65535, "INTAKE_HTTP_PORT must be a TCP port"),
        (s.http.backlog >= 1, "INTAKE_HTTP_BACKLOG must be >= 1"),
        (s.http.first_read_bytes >= 1 * KiB, "INTAKE_HTTP_FIRST_READ_BYTES must be >= 1024"),
        (
            s.http.read_bytes >= s.http.first_read_bytes,
            "INTAKE_HTTP_READ_BYTES must be >= INTAKE_HTTP_FIRST_READ_BYTES",
        ),
        (s.http.max_in_flight >= 1, "INTAKE_MAX_IN_FLIGHT must be >= 1"),
        (
            s.http.max_in_flight_bytes >= s.limits.max_body_bytes,
            "INTAKE_MAX_IN_FLIGHT_BYTES must admit at least one request of the largest size",
        ),
        (s.http.max_pending_produce >= 1, "INTAKE_MAX_PENDING_PRODUCE must be >= 1"),
        (s.http.max_loop_lag_ms >= 0, "INTAKE_MAX_LOOP_LAG_MS must be >= 0"),
        (s.http.linger_s >= 0, "INTAKE_LINGER_S must be >= 0"),
        (s.http.header_timeout_s > 0, "INTAKE_HEADER_TIMEOUT_S must be positive"),
        (s.http.max_header_bytes >= 1024, "INTAKE_MAX_HEADER_BYTES must be >= 1024"),
        (s.http.max_headers >= 16, "INTAKE_MAX_HEADERS must be >= 16"),
        (s.http.drain_delay_s >= 0, "INTAKE_DRAIN_DELAY_S must be >= 0"),
        (s.http.processes >= 0, "INTAKE_HTTP_PROCESSES must be >= 0"),
        (
            s.http.rate_per_address > 0 and s.http.burst_per_address >= 1,
            "INTAKE_RATE_PER_ADDRESS and INTAKE_BURST_PER_ADDRESS must be positive",
        ),
        (
            s.http.rate_per_client > 0 and s.http.burst_per_client >= 1,
            "INTAKE_RATE_PER_CLIENT and INTAKE_BURST_PER_CLIENT must be positive",
        ),
        (s.http.rate_limit_keys >= 1, "INTAKE_RATE_LIMIT_KEYS must be >= 1"),
        (s.status.queue_sample_s > 0, "INTAKE_QUEUE_SAMPLE_S must be positive"),
        (
            s.status.queue_rate_window_s >= 2 * s.status.queue_sample_s,
            "INTAKE_QUEUE_RATE_WINDOW_S must span at least two samples",
        ),
        (s.status.poll_after_max_s >= s.http.poll_after_s, "INTAKE_POLL_AFTER_MAX_S must be >= INTAKE_POLL_AFTER_S"),
        (0 < s.status.poll_wait_fraction <= 1, "INTAKE_POLL_WAIT_FRACTION must be in (0, 1]"),
        (s.status.view_max_entries >= 0, "INTAKE_STATUS_VIEW_MAX_ENTRIES must be >= 0"),
        (s.http.produce_timeout_s > 0, "INTAKE_PRODUCE_TIMEOUT_S must be positive"),
        (s.http.body_read_timeout_s > 0, "INTAKE_BODY_READ_TIMEOUT_S must be positive"),
        (s.consumer.pool_workers >= 0, "INTAKE_POOL_WORKERS must be >= 0"),
        (s.consumer.max_batch >= 1, "INTAKE_CONSUMER_MAX_BATCH must be >= 1"),
        (s.consumer.registry_reload_s > 0, "INTAKE_REGISTRY_RELOAD_S must be positive"),
        (s.consumer.retry_topic_attempts >= 1, "INTAKE_RETRY_TOPIC_ATTEMPTS must be >= 1"),
        (s.consumer.retry_topic_delay_s >= 0, "INTAKE_RETRY_TOPIC_DELAY_S must be >= 0"),
        (s.wave.opens_at < s.wave.closes_at, "INTAKE_WAVE_OPENS_AT must be before INTAKE_WAVE_CLOSES_AT"),
        (s.wave.quota >= 0, "INTAKE_WAVE_QUOTA must be >= 0"),
        (
            s.photo.max_bytes <= s.limits.max_photo_bytes,
            "the photo policy's max_bytes must not exceed INTAKE_MAX_PHOTO_BYTES",
        ),
        (s.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "INTAKE_LOG_LEVEL must be a log level"),
    ]
    for ok, message in checks:
        if not ok:
            raise SettingsError(message)
    try:
        if not parse_client_keys(s.security.client_keys):
            raise ValueError("no key listed")
    except ValueError as exc:
        raise SettingsError(f"INTAKE_CLIENT_KEYS: {exc}") from None
