//! The operation limits' refusals: one code per limit, and a message that
//! says what to do.

/// An operation limit (`[limits]`, `server.max_batch_operations`; see
/// `graphql::limits`), each refused with a code that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Aliases,
    RootFields,
    Directives,
    Tokens,
    /// Selections once fragments are spread where they are used. Held to
    /// the cost budget: validating them is work whatever they cost to
    /// resolve, and the cost itself is only known after validation.
    Selections,
    BatchOperations,
    /// Subscriptions running on one WebSocket connection.
    Subscriptions,
}

impl Limit {
    pub fn code(self) -> &'static str {
        match self {
            Self::Aliases => "QUERY_TOO_MANY_ALIASES",
            Self::RootFields => "QUERY_TOO_MANY_ROOT_FIELDS",
            Self::Directives => "QUERY_TOO_MANY_DIRECTIVES",
            Self::Tokens => "QUERY_TOO_MANY_TOKENS",
            Self::Selections => "QUERY_TOO_COMPLEX",
            Self::BatchOperations => "BATCH_TOO_LARGE",
            Self::Subscriptions => "TOO_MANY_SUBSCRIPTIONS",
        }
    }

    /// The extension that carries what was found (`limit` carries the limit).
    pub(super) fn found_key(self) -> &'static str {
        match self {
            Self::Aliases => "aliases",
            Self::RootFields => "rootFields",
            Self::Directives => "directives",
            Self::Tokens => "tokens",
            Self::Selections => "selections",
            Self::BatchOperations => "operations",
            Self::Subscriptions => "subscriptions",
        }
    }

    pub(super) fn message(self, found: usize, max: usize) -> String {
        match self {
            Self::Aliases => format!(
                "the operation has {found} aliased fields (a fragment's counted each time it is spread) and the limit is {max}: ask for the same field under fewer names, or split the operation"
            ),
            Self::RootFields => {
                format!("the operation selects {found} fields at its root and the limit is {max}: split it into several operations")
            }
            Self::Directives => format!(
                "the operation has {found} directives (a fragment's counted each time it is spread) and the limit is {max}: remove repeated ones"
            ),
            Self::Tokens => format!(
                "the document has {found} tokens and the limit is {max}: send a smaller document, and pass values as variables rather than literals"
            ),
            Self::Selections => format!(
                "once its fragments are spread where they are used, the operation holds {found} selections, and one request may hold {max} (its cost budget): spread fragments fewer times"
            ),
            Self::BatchOperations => format!("a batch may hold at most {max} operations and this one has {found}; split it"),
            Self::Subscriptions => format!(
                "this connection already runs {found} subscriptions and the limit is {max}: complete one first, or open another connection"
            ),
        }
    }
}
