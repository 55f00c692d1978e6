//! The OTel resource of every metric and log record: who is speaking. Owns the resource keys and
//! the instrumentation scope name; reads nothing but `OTEL_RESOURCE_ATTRIBUTES` (the SDK's
//! standard detectors), which the explicit values here override.

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

use super::ResourceInfo;

/// `service.name` value.
pub const SERVICE_NAME: &str = "callpulse";
/// Scope name of callpulse's meter and logger.
pub const SCOPE_NAME: &str = "callpulse";

/// Resource attribute keys (semantic conventions, stable).
pub mod key {
    /// Logical service name.
    pub const SERVICE_NAME: &str = "service.name";
    /// Unique instance of the service.
    pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";
    /// Release of the service.
    pub const SERVICE_VERSION: &str = "service.version";
}

/// Builds the resource: the SDK defaults (`telemetry.sdk.*`, `OTEL_RESOURCE_ATTRIBUTES`), then
/// `service.name=callpulse`, `service.instance.id` and `service.version`, which win.
pub fn build(info: &ResourceInfo) -> Resource {
    Resource::builder()
        .with_attributes([
            KeyValue::new(key::SERVICE_NAME, SERVICE_NAME),
            KeyValue::new(key::SERVICE_INSTANCE_ID, info.instance_id.clone()),
            KeyValue::new(key::SERVICE_VERSION, info.version.clone()),
        ])
        .build()
}

#[cfg(test)]
mod tests {
    use opentelemetry::Key;

    use super::*;

    #[test]
    fn identity_attributes_are_set() {
        let r = build(&ResourceInfo {
            instance_id: "pbx-a-sidecar".into(),
            version: "9.9.9".into(),
        });
        let get = |k: &'static str| r.get(&Key::from_static_str(k)).map(|v| v.to_string());
        assert_eq!(get(key::SERVICE_NAME).as_deref(), Some("callpulse"));
        assert_eq!(
            get(key::SERVICE_INSTANCE_ID).as_deref(),
            Some("pbx-a-sidecar")
        );
        assert_eq!(get(key::SERVICE_VERSION).as_deref(), Some("9.9.9"));
    }
}
