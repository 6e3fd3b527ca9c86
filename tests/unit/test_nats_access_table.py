"""The identity table (services.common.nats_access) names the streams events.py creates, and each
declared consumer reads subjects its stream holds: a consumer declared on the wrong stream, or a
stream added without its name here, fails here rather than as a permissions violation at run time."""

from services.common import events, nats_access


def _within(subject: str, pattern: str) -> bool:
    """Whether every subject ``subject`` (itself a pattern) matches also matches ``pattern``."""
    if pattern.endswith(".>"):
        return subject.startswith(pattern[:-1])
    return subject == pattern


def test_the_table_names_every_stream_there_is():
    assert set(nats_access.STREAM_NAMES) == set(events.STREAMS)


def test_every_consumer_reads_subjects_of_its_own_stream():
    consumers = [c for who in nats_access.IDENTITIES.values() for c in who.consumes]
    for consumer in consumers:
        held = events.STREAMS[consumer.stream][0]
        assert all(any(_within(s, pattern) for pattern in held) for s in consumer.subjects), consumer
