//! `google.rpc.Status` and the two details OTLP asks for (`RetryInfo` on throttling,
//! `BadRequest` on bad data), as protobuf and as proto3 JSON.
//!
//! Hand-written prost messages: the receiver needs three small messages, not a dependency on the
//! whole `google.rpc` tree. Field numbers follow `google/rpc/{status,error_details}.proto`.

use std::time::Duration;

use prost::Message;

/// `google.rpc.Code` values the receivers answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RpcCode {
    /// 3: bad data, never retried.
    InvalidArgument = 3,
    /// 5: no such path.
    NotFound = 5,
    /// 8: over the size limit.
    ResourceExhausted = 8,
    /// 12: method not allowed.
    Unimplemented = 12,
    /// 13: the request's handling failed on our side.
    Internal = 13,
    /// 14: back-pressure, retried.
    Unavailable = 14,
    /// 16: missing or wrong token.
    Unauthenticated = 16,
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct RpcStatus {
    /// `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing English text.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ProtoAny {
    /// `type.googleapis.com/<full name>`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct RetryInfo {
    /// How long the client should wait.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.rpc.BadRequest.FieldViolation`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct FieldViolation {
    /// Path of the offending field (empty: the whole body).
    #[prost(string, tag = "1")]
    pub field: String,
    /// What is wrong.
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `google.rpc.BadRequest`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct BadRequest {
    /// The violations.
    #[prost(message, repeated, tag = "1")]
    pub field_violations: Vec<FieldViolation>,
}

const RETRY_INFO_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";
const BAD_REQUEST_URL: &str = "type.googleapis.com/google.rpc.BadRequest";

/// What the body says beyond code and message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Detail {
    /// None.
    None,
    /// Retry after this delay.
    RetryAfter(Duration),
    /// The body could not be decoded, for this reason.
    BadRequest(String),
}

impl RpcStatus {
    /// A status with its detail.
    pub(crate) fn new(code: RpcCode, message: &str, detail: &Detail) -> Self {
        let details = match detail {
            Detail::None => Vec::new(),
            Detail::RetryAfter(d) => vec![ProtoAny {
                type_url: RETRY_INFO_URL.into(),
                value: RetryInfo {
                    retry_delay: Some(ProtoDuration {
                        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
                    }),
                }
                .encode_to_vec(),
            }],
            Detail::BadRequest(reason) => vec![ProtoAny {
                type_url: BAD_REQUEST_URL.into(),
                value: BadRequest {
                    field_violations: vec![FieldViolation {
                        field: String::new(),
                        description: reason.clone(),
                    }],
                }
                .encode_to_vec(),
            }],
        };
        RpcStatus {
            code: code as i32,
            message: message.into(),
            details,
        }
    }

    /// The proto3 JSON form (`Any` details carry `@type` and the message's own fields).
    pub(crate) fn to_json(code: RpcCode, message: &str, detail: &Detail) -> Vec<u8> {
        let details = match detail {
            Detail::None => serde_json::json!([]),
            Detail::RetryAfter(d) => serde_json::json!([{
                "@type": RETRY_INFO_URL,
                "retryDelay": json_duration(*d),
            }]),
            Detail::BadRequest(reason) => serde_json::json!([{
                "@type": BAD_REQUEST_URL,
                "fieldViolations": [{ "field": "", "description": reason }],
            }]),
        };
        let v = serde_json::json!({
            "code": code as i32,
            "message": message,
            "details": details,
        });
        v.to_string().into_bytes()
    }
}

/// proto3 JSON of a `google.protobuf.Duration`: `"1s"`, `"0.250s"`.
fn json_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}.{:09}s", d.as_secs(), d.subsec_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trips_through_protobuf() {
        let s = RpcStatus::new(
            RpcCode::Unavailable,
            "busy",
            &Detail::RetryAfter(Duration::from_millis(1500)),
        );
        let back = RpcStatus::decode(&s.encode_to_vec()[..]).unwrap();
        assert_eq!(back.code, 14);
        assert_eq!(back.message, "busy");
        assert_eq!(back.details[0].type_url, RETRY_INFO_URL);
        let info = RetryInfo::decode(&back.details[0].value[..]).unwrap();
        assert_eq!(
            info.retry_delay,
            Some(ProtoDuration {
                seconds: 1,
                nanos: 500_000_000
            })
        );
    }

    #[test]
    fn json_form_uses_camel_case_and_type_urls() {
        let j = RpcStatus::to_json(
            RpcCode::Unavailable,
            "busy",
            &Detail::RetryAfter(Duration::from_secs(2)),
        );
        let v: serde_json::Value = serde_json::from_slice(&j).unwrap();
        assert_eq!(v["code"], 14);
        assert_eq!(v["details"][0]["@type"], RETRY_INFO_URL);
        assert_eq!(v["details"][0]["retryDelay"], "2s");
        let j = RpcStatus::to_json(
            RpcCode::InvalidArgument,
            "bad",
            &Detail::BadRequest("eof".into()),
        );
        let v: serde_json::Value = serde_json::from_slice(&j).unwrap();
        assert_eq!(v["details"][0]["fieldViolations"][0]["description"], "eof");
        assert_eq!(json_duration(Duration::from_millis(250)), "0.250000000s");
    }
}
