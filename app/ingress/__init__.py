"""HTTP webhook receivers: the body is written untouched to a domain's raw topic, acknowledged only by Kafka."""
