//! The GraphQL lexer of `shape`: tokens as GraphQL §2.1 defines them, read
//! in one pass over the bytes, never failing. What does not lex is one
//! token per character, left for the parser to refuse.

/// One lexical token (GraphQL §2.1); white space, commas, comments and a
/// byte order mark are not tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// `! $ & ( ) : = @ [ ] { | }`
    Punct(u8),
    /// `...`
    Spread,
    Name(&'a str),
    /// A number or a string.
    Value,
    /// Anything else (one character).
    Other,
}

pub(super) struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.text.as_bytes().get(at).copied()
    }

    fn skip_ignored(&mut self) {
        while let Some(c) = self.byte(self.at) {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.at += 1,
                b'#' => {
                    while self.byte(self.at).is_some_and(|c| c != b'\n' && c != b'\r') {
                        self.at += 1;
                    }
                }
                0xEF if self.text.as_bytes()[self.at..].starts_with(&[0xEF, 0xBB, 0xBF]) => self.at += 3,
                _ => return,
            }
        }
    }

    /// Past a string starting at `start`: a block string ends at an
    /// unescaped `"""`, a string at an unescaped `"` or the end of the line.
    fn string(&mut self, start: usize) {
        let bytes = self.text.as_bytes();
        if bytes[start..].starts_with(b"\"\"\"") {
            self.at = start + 3;
            while self.at < bytes.len() {
                if bytes[self.at..].starts_with(b"\\\"\"\"") {
                    self.at += 4;
                } else if bytes[self.at..].starts_with(b"\"\"\"") {
                    self.at += 3;
                    return;
                } else {
                    self.at += 1;
                }
            }
            return;
        }
        while let Some(c) = self.byte(self.at) {
            match c {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    return;
                }
                b'\n' | b'\r' => return,
                _ => self.at += 1,
            }
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_ignored();
        let start = self.at;
        let c = self.byte(start)?;
        self.at += 1;
        let is_name = |c: Option<u8>| c.is_some_and(|c| c == b'_' || c.is_ascii_alphanumeric());
        Some(match c {
            b'!' | b'$' | b'&' | b'(' | b')' | b':' | b'=' | b'@' | b'[' | b']' | b'{' | b'|' | b'}' => Token::Punct(c),
            b'.' if self.text.as_bytes()[start..].starts_with(b"...") => {
                self.at = start + 3;
                Token::Spread
            }
            b'_' | b'A'..=b'Z' | b'a'..=b'z' => {
                while is_name(self.byte(self.at)) {
                    self.at += 1;
                }
                Token::Name(&self.text[start..self.at])
            }
            b'-' | b'0'..=b'9' => {
                while self.byte(self.at).is_some_and(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) {
                    self.at += 1;
                }
                Token::Value
            }
            b'"' => {
                self.string(start);
                Token::Value
            }
            _ => {
                // One character, however long in UTF-8.
                while self.byte(self.at).is_some_and(|c| c & 0xC0 == 0x80) {
                    self.at += 1;
                }
                Token::Other
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token<'_>> {
        Lexer::new(text).collect()
    }

    #[test]
    fn the_lexer_skips_what_is_ignored_and_reads_strings_and_numbers_whole() {
        use Token::*;
        assert_eq!(tokens("\u{feff}{ a, # b { c\n b }"), [Punct(b'{'), Name("a"), Name("b"), Punct(b'}')]);
        assert_eq!(tokens(r#"f(s: "a \" } { b", t: """x "" \""" }""", n: -1.5e+3)"#).len(), 12);
        assert_eq!(tokens("...F ... on T"), [Spread, Name("F"), Spread, Name("on"), Name("T")]);
        // What does not lex is still a token, one per character.
        assert_eq!(tokens("é % .."), [Other, Other, Other, Other]);
        // An unterminated string ends at the line.
        assert_eq!(tokens("\"abc\n}"), [Value, Punct(b'}')]);
        assert_eq!(tokens("\"\"\"abc"), [Value]);
    }
}
