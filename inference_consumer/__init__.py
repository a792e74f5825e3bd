"""Inference workers: a Kafka consumer group that runs the model on task requests."""
