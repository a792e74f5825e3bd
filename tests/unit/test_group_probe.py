"""A group's lag, as backpressure, /monitor and read-your-writes count it."""

from __future__ import annotations

from asyncarch.group_probe import PartitionProgress
from schemas.topics import TopicSettings

TOPICS = TopicSettings(prefix="t")


def progress(topic: str, start: int, end: int, committed: int | None) -> PartitionProgress:
    return PartitionProgress(topic, 0, start, end, committed)


def test_lag_counts_from_the_committed_offset() -> None:
    assert progress(TOPICS.requests, 0, 10, 4).lag() == 6
    assert progress(TOPICS.requests, 0, 10, 10).lag() == 0


def test_a_group_that_committed_nothing_resumes_from_the_partitions_start() -> None:
    assert progress(TOPICS.requests, 3, 10, None).position == 3
    assert progress(TOPICS.requests, 3, 10, None).lag() == 7
    assert progress(TOPICS.requests, 0, 10, 0).lag() == 10  # committed 0 is not "nothing"


def test_the_commit_marker_ending_a_transactional_topic_is_not_lag() -> None:
    caught_up = progress(TOPICS.results, 0, 11, 10)
    assert caught_up.lag(TOPICS.transactional) == 0
    assert caught_up.lag() == 1
    assert progress(TOPICS.requests, 0, 11, 10).lag(TOPICS.transactional) == 1


def test_a_reader_ahead_of_the_groups_commit_counts_from_where_it_read() -> None:
    assert progress(TOPICS.status, 0, 21, 5).lag(TOPICS.transactional, read_to=20) == 0
    assert progress(TOPICS.status, 0, 21, 5).lag(TOPICS.transactional, read_to=12) == 8
    assert progress(TOPICS.status, 0, 21, 15).lag(TOPICS.transactional, read_to=12) == 5


def test_transactional_topics_are_those_the_workers_write_in_transactions() -> None:
    assert TOPICS.transactional == {TOPICS.status, TOPICS.results}
