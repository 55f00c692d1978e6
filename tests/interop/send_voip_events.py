"""Send VoIP events to callpulse with the OpenTelemetry Python SDK (a real OTLP client).

Used by tests/it/otlp_interop.rs. Usage:
    python send_voip_events.py --protocol grpc|http --endpoint 127.0.0.1:PORT --pbx NAME

Sends, through the SDK's logs pipeline (LoggerProvider + BatchLogRecordProcessor + OTLP exporter):
  - 10 voip.cdr records on trunk "py-trunk": 8 answered (60 s each), 2 busy;
  - 20 voip.registration records, 3 of them failures;
  - 1 voip.quality record (G.711, 1 % loss, 20 ms jitter, 100 ms RTT).
Exits 0 when the SDK reports the flush succeeded, 1 otherwise.
"""

import argparse
import sys

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", choices=["grpc", "http"], required=True)
    ap.add_argument("--endpoint", required=True, help="host:port")
    ap.add_argument("--pbx", default="py-pbx")
    args = ap.parse_args()

    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from grpc import Compression

        exporter = OTLPLogExporter(endpoint=f"http://{args.endpoint}", insecure=True, compression=Compression.Gzip)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http import Compression

        exporter = OTLPLogExporter(endpoint=f"http://{args.endpoint}/v1/logs", compression=Compression.Gzip)

    resource = Resource.create({"service.name": "asterisk", "service.instance.id": args.pbx})
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = provider.get_logger("callpulse-interop")

    for i in range(10):
        answered = i < 8
        logger.emit(
            event_name="voip.cdr",
            body=f"call {i}",
            attributes={
                "voip.call.id": f"py-{args.protocol}-{i}",
                "voip.call.disposition": "answered" if answered else "busy",
                "voip.call.duration": 65.0 if answered else 5.0,
                "voip.call.billable_duration": 60.0 if answered else 0.0,
                "voip.trunk": "py-trunk",
                "voip.call.direction": "outbound",
                "sip.response.status_code": 200 if answered else 486,
            },
        )
    for i in range(20):
        logger.emit(
            event_name="voip.registration",
            attributes={"voip.registration.outcome": "failure" if i < 3 else "success"},
        )
    logger.emit(
        event_name="voip.quality",
        attributes={
            "voip.call.id": f"py-{args.protocol}-0",
            "voip.trunk": "py-trunk",
            "voip.codec": "PCMU",
            "voip.rtp.loss_ratio": 0.01,
            "voip.rtp.jitter": 0.02,
            "voip.rtp.rtt": 0.1,
        },
    )
    ok = provider.force_flush(10_000)
    provider.shutdown()
    print(f"sent over {args.protocol}: flush {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
