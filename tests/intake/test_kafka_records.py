"""The record and partition protocols (intake/kafka/records.py) fit both implementations: aiokafka's and the
in-memory broker's (mypy checks the assignments below; the test checks the values)."""

from __future__ import annotations

import dataclasses

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from consumers.consumer import ConsumerLike
from intake.kafka.records import ConsumedRecord, TopicPartitionLike
from intake.memory_kafka import MemoryBroker, MemoryConsumer, MemoryRecord, Partition


def test_memory_types_are_the_protocols() -> None:
    broker = MemoryBroker()
    broker.create_topic("t", 2)
    record: ConsumedRecord = MemoryRecord("t", 1, 7, b"k", b"v", (("h", b"1"),))
    tp: TopicPartitionLike = Partition("t", 1)
    consumer: ConsumerLike = MemoryConsumer(broker, "g", ["t"])
    assert (record.topic, record.partition, record.offset, record.key, record.value) == ("t", 1, 7, b"k", b"v")
    assert (tp.topic, tp.partition) == ("t", 1)
    assert tp in consumer.assignment()


def test_aiokafka_partitions_and_records_have_the_attributes_read() -> None:
    theirs = TopicPartition("t", 1)
    assert theirs == Partition("t", 1) and hash(theirs) == hash(Partition("t", 1))
    read = {name for name, value in vars(ConsumedRecord).items() if isinstance(value, property)}
    assert read == {"topic", "partition", "offset", "key", "value", "headers"}
    assert read <= {f.name for f in dataclasses.fields(ConsumerRecord)}


def test_the_memory_consumer_takes_aiokafka_partitions() -> None:
    broker = MemoryBroker()
    broker.create_topic("t", 1)
    consumer = MemoryConsumer(broker, "g", ["t"])
    consumer.pause(TopicPartition("t", 0))
    assert consumer.paused() == {Partition("t", 0)}
    consumer.resume(TopicPartition("t", 0))
    assert consumer.paused() == set()
