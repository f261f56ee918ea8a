"""Switchyard: a Kafka stream processor for five upstream systems."""

__version__ = "0.1.0"
