"""The Faust application: one per process, configured from the environment.

This module only builds the App. Agents and views register themselves when
``stream_processors.main`` imports them, so nothing here imports back.
"""

from __future__ import annotations

import faust

from asyncarch.config import KafkaSettings
from schemas.topics import TopicSettings
from stream_processors.config import ProcessorSettings
from stream_processors.credentials import broker_credentials
from stream_processors.transport import SCHEME

__all__ = ["app", "kafka_settings", "processor_settings", "topic_settings"]

kafka_settings = KafkaSettings()
topic_settings = TopicSettings()
processor_settings = ProcessorSettings()

app = faust.App(
    processor_settings.app_id,
    broker=";".join(
        f"{SCHEME}://{server}" for server in kafka_settings.bootstrap_servers.split(",")
    ),
    store=processor_settings.store,
    datadir=str(processor_settings.data_dir),
    web_host=processor_settings.web_host,
    web_bind=processor_settings.web_host,
    web_port=processor_settings.web_port,
    topic_partitions=topic_settings.partitions,
    topic_replication_factor=topic_settings.replication_factor,
    autodiscover=False,
    key_serializer="raw",
    value_serializer="raw",
    consumer_auto_offset_reset="earliest",
    broker_credentials=broker_credentials(kafka_settings),
    producer_acks=-1,
    # Each applied event writes the changelog and the task-state topic; without a
    # linger aiokafka sends one produce request per write, which was the largest
    # share of the processor's CPU under load. Queries read the table in memory,
    # so the linger delays no answer.
    producer_linger=processor_settings.producer_linger_s,
    broker_session_timeout=processor_settings.session_timeout_s,
    broker_heartbeat_interval=processor_settings.heartbeat_interval_s,
    consumer_group_instance_id=processor_settings.static_member_id,
    web_access_log=None,
)
