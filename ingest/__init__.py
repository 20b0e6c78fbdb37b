"""The aiohttp front: accepts registrations with KTP photos and appends them durably to Kafka."""
