//! Bearer-token check for both receivers (`Authorization: Bearer <token>`).
//!
//! Compares in constant time so the token cannot be guessed byte by byte from response timing.
//! Knows nothing of status codes: the servers turn a refusal into 401 / UNAUTHENTICATED.

use http::HeaderMap;

/// The configured token.
pub(crate) struct BearerToken(Vec<u8>);

impl BearerToken {
    /// Wraps the configured token.
    pub(crate) fn new(token: &str) -> Self {
        BearerToken(token.as_bytes().to_vec())
    }

    /// True when `headers` carry `Authorization: Bearer <this token>` (scheme case-insensitive).
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return false;
        };
        let value = value.as_bytes();
        let Some((scheme, token)) = value.split_first_chunk::<7>() else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer ") && constant_time_eq(token.trim_ascii(), &self.0)
    }
}

/// Equality whose running time depends only on the longer length, not on where the inputs
/// differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = a.len() ^ b.len();
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(http::header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn admits_only_the_exact_token() {
        let t = BearerToken::new("s3cret");
        assert!(t.admits(&headers(Some("Bearer s3cret"))));
        assert!(t.admits(&headers(Some("bearer s3cret"))));
        for bad in [
            None,
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("Bearer S3cret"),
            Some("Basic s3cret"),
            Some("s3cret"),
            Some("Bearer"),
            Some(""),
        ] {
            assert!(!t.admits(&headers(bad)), "{bad:?} admitted");
        }
    }

    #[test]
    fn constant_time_eq_matches_slice_eq() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"", b""),
            (b"a", b""),
            (b"abc", b"abc"),
            (b"abc", b"abd"),
            (b"abc\0", b"abc"),
        ];
        for (a, b) in cases {
            assert_eq!(constant_time_eq(a, b), a == b, "{a:?} vs {b:?}");
        }
    }
}
