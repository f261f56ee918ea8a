#!/bin/sh
# Writes server.properties from the KAFKA_* environment (KAFKA_FOO_BAR=x -> foo.bar=x), formats the KRaft
# storage once (CLUSTER_ID), then execs the broker so that `docker stop` (SIGTERM) reaches the JVM and is a
# controlled shutdown. JVM flags as app/broker.py's: serial GC and C1 only, for small shared machines.
set -euf
conf=/var/lib/kafka/server.properties
env | grep '^KAFKA_' | sort | while IFS='=' read -r name value; do
  printf '%s=%s\n' "$(printf '%s' "${name#KAFKA_}" | tr 'A-Z_' 'a-z.')" "$value"
done > "$conf"
# set -f above: the class path's `*` reaches java unexpanded, as java wants it.
jvm="java -Xms${JAVA_HEAP_MIN:-256m} -Xmx${JAVA_HEAP:-512m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties
  -cp /opt/kafka/libs/*"
$jvm kafka.tools.StorageTool format --ignore-formatted -t "$CLUSTER_ID" -c "$conf"
exec $jvm kafka.Kafka "$conf"
