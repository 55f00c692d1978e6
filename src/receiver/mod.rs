//! OTLP log receivers (gRPC `LogsService/Export`, HTTP `POST /v1/logs`): limits, auth, TLS and
//! back-pressure statuses. Hands normalised events to the engine; interprets no VoIP semantics.
