//! Export through the OpenTelemetry SDK: OTLP metrics and logs (gRPC or HTTP), the Prometheus
//! scrape endpoint and the console exporter, all fed by one set of instruments. SDK types stay here.
