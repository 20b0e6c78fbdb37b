"""The ``intake`` command line.

    intake up                 start the local stack, create topics and buckets, run the API and a consumer;
                              Ctrl-C stops everything it started (children, then the stack)
    intake serve              run the API only (INTAKE_HTTP_HOST/PORT)
    intake consume            run one consumer group member
    intake topics create      create the topics (idempotent)
    intake topics describe    print partitions and limits of the topics, as the broker reports them
    intake topics manifest    print the topics as Strimzi KafkaTopic objects (--cluster, --users), no broker needed
    intake dlq list|replay    show the dead-letter topic; replay --all or --offset N to the submissions topic
                              (erased letters skipped unless --include-erased)
    intake erase              erase the data of the applicants whose NIKs are given on standard input
    intake keys rotate        rewrap every data key under the first key-encryption key of INTAKE_DATA_KEKS
                              (resumable); --check counts the keys per KEK id, so an old KEK can be removed
    intake waves close N      close wave N: select (order of completion, or --seed lottery), mark the rest
                              quota_exceeded, publish outcomes; idempotent and resumable
    intake waves export N     write wave N's selected applicants (registration records) to --output as JSONL
                              or CSV, with a progress bar; streaming and resumable (a checkpoint beside it)
    intake audit list         print the audit log of KTP image reads (--submission ID for one submission)
    intake sign METHOD PATH   print headers signing one API request (--scope, --actor), e.g. for curl
    intake settings           print every environment variable with its default and meaning

Settings are read from the environment once, at start, and validated before anything runs.
"""

# The composition root, where the layers meet: it may import every layer, no layer imports it
# (tests/test_layers.py). One module per command group; ``cli.main`` builds the parser.
