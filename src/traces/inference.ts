/** Client/server roles from ports (SPEC §4). */

/**
 * Service ports above 1024 that identify a server; ports up to 1024 are decided by the first two rules.
 * The one list of well-known service ports, in one place.
 */
const SERVICE_PORTS: ReadonlySet<number> = new Set([
  22,
  53,
  80,
  443, // also ≤ 1024, listed so that rule 3 decides between two low ports
  1433, // Microsoft SQL Server
  1521, // Oracle
  1883, // MQTT
  2049, // NFS
  2181, // ZooKeeper
  3306, // MySQL
  3389, // RDP
  4317, // OTLP gRPC
  4318, // OTLP HTTP
  5044, // Beats
  5432, // PostgreSQL
  5601, // Kibana
  5672, // AMQP
  5900, // VNC
  6379, // Redis
  6443, // Kubernetes API
  8080, // HTTP alternate
  8443, // HTTPS alternate
  8883, // MQTT over TLS
  9042, // Cassandra
  9090, // Prometheus
  9092, // Kafka
  9200, // Elasticsearch
  9300, // Elasticsearch transport
  11211, // memcached
  27017, // MongoDB
]);

/** Which side is the server: `"destination"`, `"source"`, or `undefined` when there is no inference. */
export function serverSide(srcPort: number, dstPort: number): "source" | "destination" | undefined {
  if (dstPort <= 1024 && srcPort > 1024) return "destination";
  if (srcPort <= 1024 && dstPort > 1024) return "source";
  const srcService = SERVICE_PORTS.has(srcPort);
  const dstService = SERVICE_PORTS.has(dstPort);
  if (dstService && !srcService) return "destination";
  if (srcService && !dstService) return "source";
  return undefined;
}
