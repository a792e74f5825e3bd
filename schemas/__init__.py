"""Event schemas (the ``.avsc`` files beside this module), their codec and the topic names."""

from schemas.codec import AvroCodec, EventSchema, codec_for, load_schema
from schemas.exceptions import EventDecodeError, EventEncodeError, SchemaError
from schemas.headers import event_headers, header_value
from schemas.topics import TopicSettings, TopicSpec

__all__ = [
    "AvroCodec",
    "EventDecodeError",
    "EventEncodeError",
    "EventSchema",
    "SchemaError",
    "TopicSettings",
    "TopicSpec",
    "codec_for",
    "event_headers",
    "header_value",
    "load_schema",
]
