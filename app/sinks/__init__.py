"""Sinks: where Switchyard writes outside Kafka."""
