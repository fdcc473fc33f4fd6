//! The type and name of a request's operation, read from the top level of
//! its text.

use async_graphql::parser::types::OperationType;

use super::lexer::{Lexer, Token};

/// The type of the operation `name` names (or of the first operation),
/// read from the text's top level alone: what the HTTP layer needs to know
/// before execution (a query runs as a reader), at no parser's cost. `None`
/// when there is none within `budget` tokens: execution will refuse it.
pub fn operation_type(text: &str, name: Option<&str>, budget: usize) -> Option<OperationType> {
    operation(text, name, budget).map(|(kind, _)| kind)
}

/// [`operation_type`], with the operation's name when it has one (what
/// metrics and the request's log line call it).
pub fn operation<'t>(text: &'t str, name: Option<&str>, budget: usize) -> Option<(OperationType, Option<&'t str>)> {
    enum At {
        Between,
        Keyword(OperationType),
        Inside,
    }
    let mut at = At::Between;
    let mut depth = 0usize;
    let chosen = |kind: OperationType, named: Option<&'t str>| (name.is_none() || named == name).then_some((kind, named));
    for token in Lexer::new(text).take(budget) {
        if depth == 0 {
            match (&at, token) {
                (At::Between, Token::Name("query")) => at = At::Keyword(OperationType::Query),
                (At::Between, Token::Name("mutation")) => at = At::Keyword(OperationType::Mutation),
                (At::Between, Token::Name("subscription")) => at = At::Keyword(OperationType::Subscription),
                (At::Between, Token::Punct(b'{')) => {
                    if let Some(kind) = chosen(OperationType::Query, None) {
                        return Some(kind);
                    }
                }
                (At::Keyword(kind), Token::Name(named)) => {
                    if let Some(kind) = chosen(*kind, Some(named)) {
                        return Some(kind);
                    }
                    at = At::Inside;
                }
                (At::Keyword(kind), _) => {
                    if let Some(kind) = chosen(*kind, None) {
                        return Some(kind);
                    }
                    at = At::Inside;
                }
                (At::Between, _) => at = At::Inside,
                (At::Inside, _) => {}
            }
        }
        match token {
            Token::Punct(b'{' | b'(' | b'[') => depth += 1,
            Token::Punct(b'}' | b')' | b']') => {
                depth = depth.saturating_sub(1);
                if depth == 0 && token == Token::Punct(b'}') {
                    at = At::Between;
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_type_is_read_from_the_top_level() {
        let doc = "query A($v: In = { mutation: 1 }) { mutation } mutation B { x } fragment F on Q { y } { z }";
        assert_eq!(operation_type(doc, None, 1000), Some(OperationType::Query));
        assert_eq!(operation_type(doc, Some("B"), 1000), Some(OperationType::Mutation));
        assert_eq!(operation_type(doc, Some("C"), 1000), None);
        assert_eq!(operation_type("mutation { x }", None, 1000), Some(OperationType::Mutation));
        assert_eq!(operation_type("mutation @d { x }", None, 1000), Some(OperationType::Mutation));
        assert_eq!(operation_type("fragment F on Q { y } subscription S { x }", None, 1000), Some(OperationType::Subscription));
        assert_eq!(operation_type("mutation B { x }", Some("B"), 1), None, "past the budget");
        assert_eq!(operation(doc, None, 1000), Some((OperationType::Query, Some("A"))));
        assert_eq!(operation(doc, Some("B"), 1000), Some((OperationType::Mutation, Some("B"))));
        assert_eq!(operation("{ z }", None, 1000), Some((OperationType::Query, None)));
    }
}
