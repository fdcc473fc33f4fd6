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

/// A name people read (of a document, client, project, user or agency):
/// like single-line `text`, and without invisible format characters
/// (Unicode category Cf: bidirectional overrides and isolates, zero-width
/// spaces and joiners, the byte-order mark...), which make a name display
/// as something it is not (`"\u{202e}fdp.exe"` shows as `exe.pdf`).
pub fn name(field: &'static str, value: &str, max: usize) -> ApiResult<String> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};
    let v = text(field, value, max, false)?;
    match v.chars().find(|c| c.general_category() == GeneralCategory::Format) {
        Some(c) => Err(bad(
            field,
            format!("must not contain invisible formatting characters such as bidirectional overrides or zero-width spaces (found U+{:04X})", u32::from(c)),
        )),
        None => Ok(v),
    }
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

/// Longest content type accepted (the column's width).
const MAX_CONTENT_TYPE: usize = 255;

/// A whole media type as RFC 9110 (§8.3.1, §5.6) writes it: `type/subtype`
/// tokens, then `; name=value` parameters whose values are tokens or quoted
/// strings. Every character is checked, not only what precedes `;`: the value
/// becomes a header of upload grants. It comes back in one spelling: type,
/// subtype and parameter names lower-cased, parameters joined by `; `.
pub fn content_type(value: &str) -> ApiResult<String> {
    const EXAMPLE: &str = "such as application/pdf or text/plain; charset=utf-8";
    if value.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err(bad("contentType", format!("must be a media type {EXAMPLE}, in printable ASCII without control characters")));
    }
    let v = value.trim_matches(' ');
    if v.len() > MAX_CONTENT_TYPE {
        return Err(bad("contentType", format!("must be at most {MAX_CONTENT_TYPE} characters")));
    }
    media_type(v).ok_or_else(|| bad("contentType", format!("must be a media type {EXAMPLE}: `type/subtype`, then `; name=value` parameters")))
}

/// RFC 9110 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_tchar)
}

/// The canonical spelling of a media type, or `None` when it is not one.
fn media_type(v: &str) -> Option<String> {
    let (essence, mut rest) = v.split_at(v.find(';').unwrap_or(v.len()));
    let (ty, subtype) = essence.trim_end_matches(' ').split_once('/')?;
    if !is_token(ty) || !is_token(subtype) {
        return None;
    }
    let mut out = format!("{}/{}", ty.to_ascii_lowercase(), subtype.to_ascii_lowercase());
    // `rest` is empty or starts with `;`. Empty parameters are allowed by
    // the grammar and dropped.
    while let Some(after) = rest.strip_prefix(';') {
        let param = after.trim_start_matches(' ');
        if param.is_empty() || param.starts_with(';') {
            rest = param;
            continue;
        }
        let (name, value) = param.split_once('=')?;
        if !is_token(name) {
            return None;
        }
        let (value, tail) = match value.strip_prefix('"') {
            Some(quoted) => {
                let len = quoted_len(quoted)?;
                (&value[..len + 1], &value[len + 1..])
            }
            None => {
                let end = value.find(';').unwrap_or(value.len());
                let token = value[..end].trim_end_matches(' ');
                if !is_token(token) {
                    return None;
                }
                (token, &value[end..])
            }
        };
        let tail = tail.trim_start_matches(' ');
        if !tail.is_empty() && !tail.starts_with(';') {
            return None;
        }
        out.push_str(&format!("; {}={value}", name.to_ascii_lowercase()));
        rest = tail;
    }
    Some(out)
}

/// The length of a quoted string's body and closing quote (`s` starts just
/// after the opening one), if it is closed and holds only `qdtext` and
/// `quoted-pair`s.
fn quoted_len(s: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some(i + 1),
            '\\' => {
                chars.next().filter(|(_, e)| *e == ' ' || e.is_ascii_graphic())?;
            }
            ' ' | '!' | '#'..='[' | ']'..='~' => {}
            _ => return None,
        }
    }
    None
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

    #[test]
    fn names_refuse_invisible_format_characters() {
        assert_eq!(name("name", " Relatório de Março ", 100).unwrap(), "Relatório de Março");
        assert_eq!(name("name", "محمد", 100).unwrap(), "محمد");
        for hidden in ['\u{202e}', '\u{202a}', '\u{200b}', '\u{200f}', '\u{2060}', '\u{2066}', '\u{2069}', '\u{feff}', '\u{00ad}'] {
            let refused = name("firstName", &format!("a{hidden}b"), 100);
            assert!(matches!(refused, Err(ApiError::BadUserInput { field: "firstName", .. })), "U+{:04X}", u32::from(hidden));
        }
        assert!(name("name", "a\u{7}b", 100).is_err(), "control characters");
        assert!(name("name", "a\nb", 100).is_err(), "names are one line");
    }

    #[test]
    fn content_types_are_checked_whole_and_spelled_one_way() {
        assert_eq!(content_type("Application/PDF").unwrap(), "application/pdf");
        assert_eq!(content_type("text/plain;charset=UTF-8").unwrap(), "text/plain; charset=UTF-8");
        assert_eq!(content_type("text/plain ; Charset=\"utf-8\" ;; format=flowed").unwrap(), "text/plain; charset=\"utf-8\"; format=flowed");
        assert_eq!(content_type("multipart/mixed; boundary=\"a \\\" b\"").unwrap(), "multipart/mixed; boundary=\"a \\\" b\"");
        for refused in [
            "application/pdf\r\nx-amz-acl: public-read",
            "application/pdf; a=b\r\nx: y",
            "text/html\n",
            "application/pdf; charset",
            "application/pdf; =x",
            "application/pdf; a=b c",
            "application/pdf; a=\"open",
            "application/pdf; a=\"x\"y",
            "application/pdf x",
            "application/",
            "/pdf",
            "app lication/pdf",
            "text/plain; charset=utf‑8",
        ] {
            assert!(content_type(refused).is_err(), "{refused:?}");
        }
        assert!(content_type(&format!("application/pdf; a={}", "x".repeat(300))).is_err(), "bounded");
    }
}
