"""The small package both edges share: settings, topic names and the message envelope, the Kafka and MinIO
adapters, the metrics registry and the command line. Nothing here runs at import time."""
