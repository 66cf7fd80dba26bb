//! Pagination: page sizes with a maximum, and opaque page tokens.
//!
//! A token carries the sort key of the last item of the page, so the next page starts after it
//! whatever was added or removed in between. Clients must treat tokens as opaque: the format
//! is versioned and may change.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ApiError;

/// Page size when the request says 0.
pub const PAGE_SIZE_DEFAULT: usize = 50;
/// Longest page token accepted, in bytes.
pub const PAGE_TOKEN_BYTES_MAX: usize = 512;

const TOKEN_PREFIX: &str = "v1:";

/// The page size asked for: 0 means [`PAGE_SIZE_DEFAULT`] (or `max` if smaller); negative or
/// over `max` is refused.
pub fn page_size(requested: i32, max: usize) -> Result<usize, ApiError> {
    match usize::try_from(requested) {
        Ok(0) => Ok(PAGE_SIZE_DEFAULT.min(max)),
        Ok(size) if size <= max => Ok(size),
        Ok(_) => Err(ApiError::invalid_argument("page_size", format!("must be at most {max}"))),
        Err(_) => Err(ApiError::invalid_argument("page_size", "must not be negative")),
    }
}

/// The token of the page after the item whose sort key is `last_key`.
pub fn encode_token(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{last_key}"))
}

/// The sort key a token carries, or `None` for an empty token (the first page).
pub fn decode_token(token: &str) -> Result<Option<String>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    let malformed = || ApiError::invalid_argument("page_token", "is not a token this service issued");
    if token.len() > PAGE_TOKEN_BYTES_MAX {
        return Err(malformed());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| malformed())?;
    let text = String::from_utf8(bytes).map_err(|_| malformed())?;
    text.strip_prefix(TOKEN_PREFIX).map(|key| Some(key.to_owned())).ok_or_else(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_and_bounds() {
        assert_eq!(page_size(0, 200).expect("default"), PAGE_SIZE_DEFAULT);
        assert_eq!(page_size(0, 10).expect("default capped"), 10);
        assert_eq!(page_size(200, 200).expect("max"), 200);
        let over = page_size(201, 200).expect_err("over");
        assert_eq!(over.to_string(), "page_size: must be at most 200");
        assert!(page_size(-1, 200).is_err());
    }

    #[test]
    fn a_token_gives_back_its_key() {
        let token = encode_token("150103");
        assert_eq!(decode_token(&token).expect("valid"), Some("150103".to_owned()));
        assert_eq!(decode_token("").expect("first page"), None);
    }

    #[test]
    fn a_foreign_token_is_refused_naming_the_field() {
        for token in ["not base64!", "aGVsbG8", &"A".repeat(PAGE_TOKEN_BYTES_MAX + 1)] {
            let error = decode_token(token).expect_err(token);
            assert!(error.to_string().starts_with("page_token:"), "{error}");
        }
    }
}
