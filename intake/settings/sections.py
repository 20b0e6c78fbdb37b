"""The settings tree: one frozen dataclass per section, every field declared with its variable and meaning.

The message-size chain lives in :class:`Limits` and nowhere else:
HTTP body limit < producer ``max_request_size`` <= topic ``max.message.bytes`` <= consumer
``max_partition_fetch_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from intake.settings.fields import setting
from processors.photo import PhotoPolicy

MiB = 1024 * 1024
KiB = 1024


@dataclass(frozen=True)
class Limits:
    """Every size limit of the upload path, defined in one place."""

    max_photo_bytes: int = setting(
        "INTAKE_MAX_PHOTO_BYTES",
        "Largest KTP photo file accepted, in bytes (the browser client shrinks photos).",
        8 * MiB,
    )
    max_registration_bytes: int = setting(
        "INTAKE_MAX_REGISTRATION_BYTES", "Largest registration JSON part accepted, in bytes.", 16 * KiB
    )
    multipart_overhead_bytes: int = setting(
        "INTAKE_MULTIPART_OVERHEAD_BYTES", "Allowance for multipart boundaries and part headers, in bytes.", 16 * KiB
    )
    envelope_overhead_bytes: int = setting(
        "INTAKE_ENVELOPE_OVERHEAD_BYTES",
        "Allowance for the Kafka record's envelope header, key and record framing, in bytes.",
        64 * KiB,
    )

    @property
    def max_body_bytes(self) -> int:
        """HTTP request body limit, enforced while streaming (413 beyond it)."""
        return self.max_photo_bytes + self.max_registration_bytes + self.multipart_overhead_bytes

    @property
    def max_message_bytes(self) -> int:
        """Producer ``max_request_size`` = topic ``max.message.bytes`` = consumer ``max_partition_fetch_bytes``.

        Strictly larger than the body limit: any accepted body fits in one record with its envelope.
        """
        return self.max_body_bytes + self.envelope_overhead_bytes


@dataclass(frozen=True)
class KafkaSettings:
    """Where Kafka is and how the topics are laid out."""

    bootstrap: str = setting(
        "INTAKE_KAFKA_BOOTSTRAP", "Kafka bootstrap servers, comma-separated host:port.", "127.0.0.1:19092"
    )
    client_id: str = setting("INTAKE_KAFKA_CLIENT_ID", "Client id reported to Kafka.", "prakerja-intake")
    topic_prefix: str = setting("INTAKE_TOPIC_PREFIX", "Prefix of every topic name (one per environment).", "intake")
    partitions: int = setting(
        "INTAKE_TOPIC_PARTITIONS", "Partitions of the submissions topic (consumer parallelism).", 6
    )
    replication_factor: int = setting(
        "INTAKE_TOPIC_REPLICATION", "Replication factor of created topics (3 in production).", 1
    )
    retention_ms: int = setting(
        "INTAKE_TOPIC_RETENTION_MS", "Retention of the submissions topic, in ms (7 days).", 7 * 24 * 3600 * 1000
    )
    request_timeout_ms: int = setting("INTAKE_KAFKA_REQUEST_TIMEOUT_MS", "Kafka request timeout, in ms.", 10_000)
    linger_ms: int = setting(
        "INTAKE_KAFKA_LINGER_MS",
        "Producer linger, in ms: how long a record waits for others to share its request. 0: none; under load "
        "records still share requests (those queued while one is in flight). A 500 KB photo fills most of a batch "
        "(librdkafka's batch.size is 1 MB), so waiting gains little and costs each upload the wait and a wake-up of "
        "the producer's thread (loadtests.bench_cpu: ~0.1 ms CPU per upload at 5 ms).",
        0,
    )
    producer: str = setting(
        "INTAKE_KAFKA_PRODUCER",
        "Producer library of the API and the workers: rdkafka (librdkafka called through its C API: the protocol "
        "encoded in C, values not copied, delivery reports taken on the event loop; intake.kafka.librdkafka), "
        "confluent (the same librdkafka through confluent-kafka: each value copied, reports served by a thread; ~5 % "
        "more API CPU per 500 KB upload) or aiokafka (pure-Python encoding; ~20 % more again). Measured by "
        "loadtests.bench_cpu.",
        "rdkafka",
    )
    group_id: str = setting(
        "INTAKE_CONSUMER_GROUP", "Consumer group of the photo/registration workers.", "intake-workers"
    )
    audit_retention_ms: int = setting(
        "INTAKE_AUDIT_RETENTION_MS",
        "Retention of the audit topic (reads of KTP images), in ms (400 days).",
        400 * 24 * 3600 * 1000,
    )
    ssl_cafile: str = setting(
        "INTAKE_KAFKA_SSL_CAFILE",
        "CA certificate (PEM file) of the brokers' TLS listener; set, every Kafka client uses TLS. Empty: plaintext.",
        "",
    )
    ssl_certfile: str = setting(
        "INTAKE_KAFKA_SSL_CERTFILE",
        "Client certificate (PEM file) for TLS client authentication, e.g. a Strimzi KafkaUser's user.crt; empty: "
        "none.",
        "",
    )
    ssl_keyfile: str = setting(
        "INTAKE_KAFKA_SSL_KEYFILE", "Private key (PEM file) of INTAKE_KAFKA_SSL_CERTFILE; empty: none.", ""
    )
    registrations_retention_ms: int = setting(
        "INTAKE_REGISTRATIONS_RETENTION_MS",
        "Retention of the registrations topic (the hand-off to the programme), in ms. -1: compacted only, the "
        "latest record of each submission is kept until replaced (an erasure replaces it by an `erased` record); "
        "> 0: compacted, and records older than this are deleted too (the programme sets it).",
        -1,
    )

    @property
    def request_timeout_s(self) -> float:
        """``request_timeout_ms`` in seconds: what a caller waits at most for one Kafka request."""
        return self.request_timeout_ms / 1000


@dataclass(frozen=True)
class S3Settings:
    """Where MinIO (or any S3 API) is, and the buckets the service owns."""

    access_key: str = setting(
        "INTAKE_S3_ACCESS_KEY", "S3 access key (from the environment, never from git).", secret=True
    )
    secret_key: str = setting(
        "INTAKE_S3_SECRET_KEY", "S3 secret key (from the environment, never from git).", secret=True
    )
    endpoint: str = setting("INTAKE_S3_ENDPOINT", "S3/MinIO endpoint host:port.", "127.0.0.1:19000")
    secure: bool = setting("INTAKE_S3_SECURE", "Use HTTPS to reach the S3 endpoint.", False)
    region: str = setting("INTAKE_S3_REGION", "S3 region name.", "us-east-1")
    bucket_photos: str = setting("INTAKE_BUCKET_PHOTOS", "Private bucket for normalised KTP images.", "intake-ktp")
    bucket_status: str = setting(
        "INTAKE_BUCKET_STATUS", "Private bucket for submission status records.", "intake-status"
    )
    bucket_registrations: str = setting(
        "INTAKE_BUCKET_REGISTRATIONS",
        "Private bucket for the registration records (personal data: every field the applicant submitted), kept "
        "until the applicant's data is erased; only the consumers and `intake waves export` read it.",
        "intake-registrations",
    )
    bucket_keys: str = setting(
        "INTAKE_BUCKET_KEYS",
        "Private, unversioned bucket of the per-applicant data keys (`keys/<nik hash>.json`, wrapped by "
        "INTAKE_DATA_KEKS); `intake erase` deletes the applicant's key, which makes their Kafka records unreadable.",
        "intake-keys",
    )
    encrypt: bool = setting(
        "INTAKE_S3_ENCRYPT",
        "Require server-side encryption (SSE-S3, keys in the server's KMS) as the buckets' default; start-up fails "
        "if the server cannot encrypt.",
        True,
    )
    io_threads: int = setting(
        "INTAKE_S3_IO_THREADS",
        "Threads doing blocking S3 calls per process; also the most connections its conditional creates (data keys, "
        "status claims: asynchronous, on the event loop) keep and use at once.",
        8,
    )


@dataclass(frozen=True)
class HttpSettings:
    """The ingest front: listening address, admission control and deadlines."""

    host: str = setting("INTAKE_HTTP_HOST", "Address the API listens on.", "127.0.0.1")
    port: int = setting("INTAKE_HTTP_PORT", "Port the API listens on.", 8080)
    backlog: int = setting(
        "INTAKE_HTTP_BACKLOG",
        "Connections the kernel queues for the API before it accepts them (listen backlog, per process; the kernel "
        "caps it at net.core.somaxconn). At a wave's opening every applicant connects at once: a full queue drops "
        "connection attempts, which clients retry only after 1, 3, 7 s.",
        2048,
    )
    first_read_bytes: int = setting(
        "INTAKE_HTTP_FIRST_READ_BYTES",
        "Bytes read from a connection at a time until its upload is admitted (a request head fits): a refused "
        "upload's body is then mostly never copied out of the kernel (ingest/reads.py).",
        16 * KiB,
    )
    read_bytes: int = setting(
        "INTAKE_HTTP_READ_BYTES",
        "Bytes read from a connection at a time once its upload is admitted (asyncio's default).",
        256 * KiB,
    )
    max_in_flight: int = setting(
        "INTAKE_MAX_IN_FLIGHT",
        "Uploads admitted at once per process; more get 503. Size it near accepted rate x target latency.",
        64,
    )
    max_in_flight_bytes: int = setting(
        "INTAKE_MAX_IN_FLIGHT_BYTES",
        "Request bytes admitted at once per process (declared Content-Length, or the body limit when undeclared).",
        512 * MiB,
    )
    max_pending_produce: int = setting(
        "INTAKE_MAX_PENDING_PRODUCE", "Records awaiting Kafka's acknowledgement per process; past it, 503.", 512
    )
    max_loop_lag_ms: float = setting(
        "INTAKE_MAX_LOOP_LAG_MS",
        "Event-loop lag (how late a 20 ms timer fires; it runs while requests come, and every second after one "
        "without any) past which new uploads get 503 at once, in ms: the CPU is saturated, so an upload admitted "
        "now would wait behind those already taken on, and every answer (refusals too) waits for the loop. 0 = off "
        "(the lag is then only exported, as intake_http_loop_lag_seconds, sampled every second). Measured against "
        "off: at 250 % of capacity as many or more uploads accepted (1.0-1.6x) with a quarter to a half of the "
        "accepted p99; in a spike to 8x no collapse, where off accepted nothing for 4 s (loadtests/README.md, "
        "'Overload with a generator that keeps up').",
        10.0,
    )
    linger_s: float = setting(
        "INTAKE_LINGER_S",
        "After an answer sent before the request body was read (a 503/429 refusal, a 401), read and discard the rest "
        "of the body for at most this long before closing, in s; 0 = close at once, so a refused body costs no CPU "
        "(clients still sending may then see the answer followed by a connection reset).",
        0.0,
    )
    header_timeout_s: float = setting(
        "INTAKE_HEADER_TIMEOUT_S",
        "Longest time for a connection to deliver a complete request head (and idle keep-alive), in s.",
        10.0,
    )
    drain_delay_s: float = setting(
        "INTAKE_DRAIN_DELAY_S", "On shutdown, time between readiness turning false and closing the listener, in s.", 2.0
    )
    processes: int = setting(
        "INTAKE_HTTP_PROCESSES", "API processes sharing the port (SO_REUSEPORT); 0 = one per core.", 1
    )
    rate_per_address: float = setting(
        "INTAKE_RATE_PER_ADDRESS",
        "Sustained requests per second per source address (token bucket); past it, 429.",
        20.0,
    )
    burst_per_address: int = setting("INTAKE_BURST_PER_ADDRESS", "Token bucket size per source address.", 60)
    rate_per_client: float = setting(
        "INTAKE_RATE_PER_CLIENT", "Sustained requests per second per API client (token bucket); past it, 429.", 5000.0
    )
    burst_per_client: int = setting("INTAKE_BURST_PER_CLIENT", "Token bucket size per API client.", 10000)
    rate_limit_keys: int = setting(
        "INTAKE_RATE_LIMIT_KEYS", "Source addresses tracked at once per process (least recently seen evicted).", 100_000
    )
    trust_forwarded: bool = setting(
        "INTAKE_TRUST_FORWARDED",
        "Take the source address from X-Forwarded-For's last hop (behind a trusted proxy).",
        False,
    )
    produce_timeout_s: float = setting(
        "INTAKE_PRODUCE_TIMEOUT_S", "Longest wait for Kafka's acknowledgement before answering 503, in s.", 10.0
    )
    body_read_timeout_s: float = setting(
        "INTAKE_BODY_READ_TIMEOUT_S", "Longest time a client may take to send the body, in s (slowloris).", 30.0
    )
    retry_after_s: int = setting("INTAKE_RETRY_AFTER_S", "Retry-After sent with 503/429 answers, in s.", 5)
    poll_after_s: int = setting("INTAKE_POLL_AFTER_S", "Polling hint returned with a status, in s.", 10)
    demo_page: bool = setting(
        "INTAKE_DEMO_PAGE", "Serve the demo registration page at /demo/ (development only; off in production).", False
    )
    readiness_max_age_s: float = setting(
        "INTAKE_READINESS_MAX_AGE_S", "Kafka metadata older than this makes /readyz fail, in s.", 15.0
    )
    max_header_bytes: int = setting(
        "INTAKE_MAX_HEADER_BYTES",
        "Longest request line or header field, in bytes; longer is refused by the HTTP parser (400).",
        8190,
    )
    max_headers: int = setting(
        "INTAKE_MAX_HEADERS", "Most header fields in one request; more is refused by the HTTP parser (400).", 64
    )
    cors_origins: str = setting(
        "INTAKE_CORS_ORIGINS",
        "Comma-separated browser origins (scheme://host[:port]) allowed to call the API cross-origin; empty: none.",
        "",
    )

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """``cors_origins`` split into origins (no trailing slashes, no blanks)."""
        return tuple(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())


@dataclass(frozen=True)
class ConsumerSettings:
    """The workers that turn submissions into stored results."""

    pool_workers: int = setting("INTAKE_POOL_WORKERS", "Processes doing image work per consumer (0 = one per core).", 0)
    max_batch: int = setting("INTAKE_CONSUMER_MAX_BATCH", "Records fetched and processed per poll.", 16)
    max_poll_interval_ms: int = setting("INTAKE_MAX_POLL_INTERVAL_MS", "Kafka max.poll.interval.ms, in ms.", 300_000)
    metrics_port: int = setting(
        "INTAKE_CONSUMER_METRICS_PORT", "Port of a consumer's /metrics endpoint on INTAKE_HTTP_HOST (0 = off).", 9102
    )
    registry_dir: str = setting(
        "INTAKE_REGISTRY_DIR",
        "Folder of exclusion registries (<source>.txt of NIKs or <source>.hashes of keyed hashes); empty = none.",
        "",
    )
    registry_reload_s: float = setting(
        "INTAKE_REGISTRY_RELOAD_S", "How often the registry folder is checked for changes and reloaded, in s.", 30.0
    )
    retry_topic_attempts: int = setting(
        "INTAKE_RETRY_TOPIC_ATTEMPTS",
        "Deliveries from the retry topic for a record that fails on its own before it is dead-lettered.",
        5,
    )
    retry_topic_delay_s: float = setting(
        "INTAKE_RETRY_TOPIC_DELAY_S",
        "Wait before a parked record's first retry, in s; doubles per attempt (<= 5 min).",
        5.0,
    )
    storage_retry_max_s: float = setting(
        "INTAKE_STORAGE_RETRY_MAX_S", "Cap of the exponential backoff between storage retries, in s.", 10.0
    )


@dataclass(frozen=True)
class WaveSettings:
    """The registration wave open now. Age is checked on the opening date; the quota applies at close."""

    number: int = setting("INTAKE_WAVE_NUMBER", "Number of the wave accepting registrations.", 1)
    opens_at: datetime = setting(
        "INTAKE_WAVE_OPENS_AT",
        "Opening time (ISO 8601 with offset).",
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=7))),
    )
    closes_at: datetime = setting(
        "INTAKE_WAVE_CLOSES_AT",
        "Closing time (ISO 8601 with offset).",
        datetime(2099, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=7))),
    )
    quota: int = setting("INTAKE_WAVE_QUOTA", "Places in the wave (600,000 in 2021).", 600_000)
    export_window: int = setting(
        "INTAKE_EXPORT_WINDOW",
        "Registration records `intake waves export` reads at once (bounds its memory), and how many it writes "
        "between two checkpoints.",
        64,
    )


@dataclass(frozen=True)
class StatusSettings:
    """Status reads for every applicant at once: the public queue watermark, the pacing of polls and the
    in-memory status view each API process materialises from the compacted status topic."""

    queue_sample_s: float = setting(
        "INTAKE_QUEUE_SAMPLE_S",
        "How often each API process reads the group's committed offsets for GET /v1/queue, in s; also the"
        " document's Cache-Control max-age.",
        1.0,
    )
    queue_rate_window_s: float = setting(
        "INTAKE_QUEUE_RATE_WINDOW_S", "Window over which the queue's drain rate per partition is measured, in s.", 60.0
    )
    poll_after_max_s: int = setting(
        "INTAKE_POLL_AFTER_MAX_S",
        "Longest polling hint (poll_after_seconds, Retry-After) for a submission still queued, in s.",
        300,
    )
    poll_wait_fraction: float = setting(
        "INTAKE_POLL_WAIT_FRACTION",
        "A queued submission is told to poll again after this fraction of its estimated wait (within"
        " INTAKE_POLL_AFTER_S..INTAKE_POLL_AFTER_MAX_S); it bounds the polls per applicant (README, sizing).",
        0.5,
    )
    view_max_entries: int = setting(
        "INTAKE_STATUS_VIEW_MAX_ENTRIES",
        "Statuses kept in memory per API process (about 300 bytes each); past it the oldest are dropped and"
        " read from the object store again. 0 = no view (every status read goes to the object store).",
        2_000_000,
    )


@dataclass(frozen=True)
class SecuritySettings:
    """Keys and authentication. Every secret comes from the environment and has no default."""

    status_token_key: str = setting(
        "INTAKE_STATUS_TOKEN_KEY", "Key signing per-submission status tokens (>= 32 chars).", secret=True
    )
    nik_pepper: str = setting(
        "INTAKE_NIK_PEPPER",
        "Secret pepper of the keyed NIK hash used as Kafka key and record key (>= 32 chars).",
        secret=True,
    )
    client_keys: str = setting(
        "INTAKE_CLIENT_KEYS",
        "API client keys, comma-separated `client:key_id:secret:scopes` (secret >= 32 chars; scopes `submit`,"
        " `read_ktp`, joined by `+`). List two key ids of a client to rotate.",
        secret=True,
    )
    data_keks: str = setting(
        "INTAKE_DATA_KEKS",
        "Key-encryption keys wrapping the per-applicant data keys that seal the personal data of Kafka records, "
        "comma-separated `kid:base64(32 bytes)`; the first wraps new keys, every one unwraps (rotation: add a new "
        "first entry, run `intake keys rotate`, remove the old one once `intake keys rotate --check` counts no key "
        "under it; README, 'Rotating the key-encryption key').",
        secret=True,
    )
    key_rotation_window: int = setting(
        "INTAKE_KEY_ROTATION_WINDOW",
        "Wrapped data keys `intake keys rotate` reads and rewraps at once (its concurrent requests to the key store; "
        "it lists the keys bucket 1,000 keys at a time, so its memory is bounded whatever the bucket holds).",
        32,
    )
    auth_max_skew_s: float = setting(
        "INTAKE_AUTH_MAX_SKEW_S", "A signed request's timestamp may differ from the clock by this much, in s.", 300.0
    )
    auth_max_nonces: int = setting(
        "INTAKE_AUTH_MAX_NONCES", "Nonces remembered per API process to refuse replayed signatures.", 200_000
    )
    seal_records: bool = setting(
        "INTAKE_SEAL_RECORDS",
        "Encrypt the personal data (registration fields and photo) of every submissions record with the applicant's "
        "data key (envelope v2; consumers open both v1 and v2). `false` (development and same-run benchmarks only) "
        "writes plaintext records: the API then logs a warning at start and `intake_records_sealed` is 0.",
        True,
    )
    data_key_cache_entries: int = setting(
        "INTAKE_DATA_KEY_CACHE_ENTRIES",
        "Unwrapped data keys an API process keeps in memory (least recently used dropped; 0 = none), so resends "
        "of one applicant do not read the key store again.",
        50_000,
    )
    data_key_cache_s: float = setting(
        "INTAKE_DATA_KEY_CACHE_S",
        "How long an API process keeps a data key in memory, in s: after an erasure, another process may still "
        "seal an upload of the same applicant under the destroyed key for this long (dead-lettered `erased`).",
        60.0,
    )
    data_key_timeout_s: float = setting(
        "INTAKE_DATA_KEY_TIMEOUT_S",
        "Longest an upload waits for the key store (creating or reading the applicant's data key), in s; then it "
        "answers 503 `storage_unavailable`, and so does every upload needing the store for as long again.",
        2.0,
    )


@dataclass(frozen=True)
class Settings:
    """The whole tree. Build it with :func:`load_settings`; tests may construct it directly."""

    security: SecuritySettings
    s3: S3Settings
    limits: Limits = field(default_factory=Limits)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    consumer: ConsumerSettings = field(default_factory=ConsumerSettings)
    wave: WaveSettings = field(default_factory=WaveSettings)
    status: StatusSettings = field(default_factory=StatusSettings)
    photo: PhotoPolicy = field(default_factory=PhotoPolicy)
    """The photo gate's limits and thresholds: ``INTAKE_PHOTO_<FIELD>`` for each field of
    :class:`~processors.photo.PhotoPolicy` (documented there, and in the table) but ``max_bytes``, which is
    ``INTAKE_MAX_PHOTO_BYTES``, and ``card_output``, the stored card's size (a contract, not a knob)."""
    log_level: str = setting("INTAKE_LOG_LEVEL", "Log level: DEBUG, INFO, WARNING, ERROR.", "INFO")


SECTIONS: tuple[tuple[str, type[Any]], ...] = (
    ("security", SecuritySettings),
    ("s3", S3Settings),
    ("limits", Limits),
    ("kafka", KafkaSettings),
    ("http", HttpSettings),
    ("consumer", ConsumerSettings),
    ("wave", WaveSettings),
    ("status", StatusSettings),
)
