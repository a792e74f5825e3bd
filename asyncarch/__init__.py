"""asyncarch: asynchronous ML inference on Apache Kafka (shared runtime pieces)."""

__version__ = "0.1.0"
