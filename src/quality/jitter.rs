//! RFC 3550 interarrival jitter and the probe's RTT-variation estimator.
