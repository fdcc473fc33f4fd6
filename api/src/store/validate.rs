//! Input checks shared by the domain's store functions. Each failure names
//! the GraphQL field, so a client can point at it.

use crate::error::{ApiError, ApiResult};

fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadUserInput { field, message: message.into() }
}

/// Trimmed, 1..=max characters, no control characters except newlines
/// where `multiline`.
pub fn text(field: &'static str, value: &str, max: usize, multiline: bool) -> ApiResult<String> {
    let v = value.trim();
    let n = v.chars().count();
    if n == 0 || n > max {
        return Err(bad(field, format!("must be 1 to {max} characters")));
    }
    if v.chars().any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r'))) {
        return Err(bad(field, "must not contain control characters"));
    }
    Ok(v.to_owned())
}

/// Like `text`; an empty value means "none".
pub fn optional_text(field: &'static str, value: Option<&str>, max: usize, multiline: bool) -> ApiResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(field, v, max, multiline).map(Some),
    }
}

pub fn optional_email(value: Option<&str>) -> ApiResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => super::users::normalize_email(v).map(Some),
    }
}

pub fn optional_phone(value: Option<&str>) -> ApiResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => {
            let digits = v.chars().filter(char::is_ascii_digit).count();
            if v.len() > 32 || digits < 5 || !v.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)) {
                Err(bad("phone", "must be a phone number: digits, spaces and + - ( ) ., at most 32 characters"))
            } else {
                Ok(Some(v.to_owned()))
            }
        }
    }
}

pub fn checksum(value: &str) -> ApiResult<String> {
    let v = value.trim().to_ascii_lowercase();
    if v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(v)
    } else {
        Err(bad("checksumSha256", "must be 64 hexadecimal characters (a SHA-256)"))
    }
}

pub fn content_type(value: &str) -> ApiResult<String> {
    let v = value.trim().to_ascii_lowercase();
    let ok = v.len() <= 255
        && v.split_once('/').is_some_and(|(t, s)| {
            let token = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c));
            token(t) && token(s.split(';').next().unwrap_or("").trim())
        });
    if ok { Ok(v) } else { Err(bad("contentType", "must be a media type such as application/pdf")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_trimmed_bounded_and_named_when_refused() {
        assert_eq!(text("name", "  Acme  ", 10, false).unwrap(), "Acme");
        assert!(text("name", "", 10, false).is_err());
        assert!(text("name", &"x".repeat(11), 10, false).is_err());
        assert!(text("name", "a\u{0}b", 10, false).is_err());
        assert!(text("notes", "a\nb", 10, true).is_ok());
        assert_eq!(optional_text("notes", Some("  "), 10, true).unwrap(), None);
        assert!(optional_phone(Some("+55 (11) 91234-5678")).unwrap().is_some());
        assert!(optional_phone(Some("call me")).is_err());
        assert!(checksum(&"a".repeat(64)).is_ok() && checksum("abc").is_err());
        assert!(content_type("application/pdf").is_ok() && content_type("pdf").is_err());
    }
}
