//! What a document's text holds, read with a lexer and never a parser: its
//! tokens, and for each operation its aliases, root fields, directives,
//! depth and selections, every fragment counted each time it is spread.
//!
//! This runs on the text, before async-graphql parses it, and is linear in
//! the text whatever it holds: the parser builds a tree of any document it
//! is given, and its first check after parsing (`limit_recursive_depth`)
//! walks every fragment spread anew, as validation does, so thirty
//! fragments each spreading the next twice cost 2^30 steps before any limit
//! on the tree could be checked. Here a fragment is measured once and its
//! counts added where it is spread; fragments that spread themselves are
//! found, not followed. It must never panic, whatever the text: what does
//! not lex is counted and left to the parser to refuse.

mod lexer;
mod operation;

use std::collections::HashMap;

use lexer::{Lexer, Token};
pub use operation::{operation, operation_type};

/// What a document holds: the largest of its operations' counts, each with
/// its fragments counted where they are spread, as async-graphql walks them
/// when it validates and executes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Measured {
    pub tokens: usize,
    /// More tokens than the budget: the counts below are only what the
    /// operations hold by themselves, without their fragments, and are
    /// lower bounds (the document is refused for its tokens anyway).
    pub over_budget: bool,
    pub aliases: usize,
    /// Fields at an operation's root, `__typename` aside.
    pub root_fields: usize,
    pub directives: usize,
    /// How deep fields nest, as async-graphql's `limit_depth` counted it:
    /// `__typename` is no level, and the root introspection fields of a
    /// query (`__schema`, `__type`) are one level whatever they select.
    pub depth: usize,
    /// Fields, fragment spreads and inline fragments.
    pub selections: usize,
    /// Fragments that spread themselves: the first, what it spreads in
    /// turn, and the first again.
    pub cycle: Option<Vec<String>>,
}

/// What a definition holds: by itself, or with what it spreads added.
#[derive(Debug, Default, Clone)]
struct Counts {
    aliases: usize,
    root_fields: usize,
    directives: usize,
    selections: usize,
    /// Depth where introspection at the root is exempt, and where not.
    depth_at_root: usize,
    depth: usize,
}

impl Counts {
    fn add(&mut self, spread: &SpreadAt<'_>, of: &Counts) {
        self.aliases = self.aliases.saturating_add(of.aliases);
        self.directives = self.directives.saturating_add(of.directives);
        self.selections = self.selections.saturating_add(of.selections);
        if spread.fields_above == 0 {
            self.root_fields = self.root_fields.saturating_add(of.root_fields);
        }
        self.depth = self.depth.max(spread.fields_above.saturating_add(of.depth));
        if !spread.exempt {
            let below = if spread.fields_above == 0 { of.depth_at_root } else { of.depth };
            self.depth_at_root = self.depth_at_root.max(spread.fields_above.saturating_add(below));
        }
    }

    /// Keeps the larger of each count; `at_root`: `other` is a query's.
    fn fold_max(&mut self, other: &Counts, at_root: bool) {
        self.aliases = self.aliases.max(other.aliases);
        self.root_fields = self.root_fields.max(other.root_fields);
        self.directives = self.directives.max(other.directives);
        self.selections = self.selections.max(other.selections);
        self.depth = self.depth.max(if at_root { other.depth_at_root } else { other.depth });
    }
}

#[derive(Debug, Clone, Copy)]
struct SpreadAt<'a> {
    fragment: &'a str,
    /// Fields enclosing the spread within its definition.
    fields_above: usize,
    /// Under a root introspection field (which counts one level when the
    /// definition is at a query's root).
    exempt: bool,
}

#[derive(Debug)]
struct Definition<'a> {
    /// The fragment's name; `None` for an operation.
    fragment: Option<&'a str>,
    /// An operation whose root is the query root (introspection is exempt there).
    query: bool,
    own: Counts,
    spreads: std::ops::Range<usize>,
}

/// A selection set being read.
#[derive(Debug, Clone, Copy)]
struct Selection {
    fields_above: usize,
    exempt: bool,
}

#[derive(Debug, Clone, Copy)]
enum Frame {
    Selection(Selection),
    /// Arguments, variable definitions, list and object values.
    Value,
}

/// What the next name means in a selection set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// After `alias:`.
    Field,
    /// After `@`.
    Directive,
    /// After `...`: a fragment's name or `on`.
    Spread,
    /// After `... on`.
    TypeCondition,
}

/// What a `{` in a selection set opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opens {
    /// An inline fragment's selections, or nothing known.
    Same,
    /// A field's selections; `true` for a root introspection field.
    Field(bool),
}

/// Measures `text`; past `budget` tokens it keeps counting but stops
/// recording spreads (see [`Measured::over_budget`]).
pub fn measure(text: &str, budget: usize) -> Measured {
    let mut m = Reader { budget, ..Reader::default() };
    let mut tokens = Lexer::new(text).peekable();
    while let Some(token) = tokens.next() {
        m.tokens += 1;
        let next_is_colon = tokens.peek() == Some(&Token::Punct(b':'));
        m.read(token, next_is_colon);
    }
    m.end_definition();
    m.finish()
}

#[derive(Default)]
struct Reader<'a> {
    budget: usize,
    tokens: usize,
    stack: Vec<Frame>,
    /// Brackets open past `budget` levels, which the stack does not hold:
    /// what is inside them only counts as tokens and directives.
    overflow: usize,
    expect: Option<Expect>,
    opens: Option<Opens>,
    current: Option<Definition<'a>>,
    /// A fragment's name comes next.
    naming_fragment: bool,
    definitions: Vec<Definition<'a>>,
    spreads: Vec<SpreadAt<'a>>,
    /// Past the budget: the largest counts of operations by themselves.
    unspread: Counts,
}

impl<'a> Reader<'a> {
    fn begin_definition(&mut self, fragment: bool, query: bool) {
        self.end_definition();
        self.naming_fragment = fragment;
        let at = self.spreads.len();
        self.current = Some(Definition { fragment: None, query, own: Counts::default(), spreads: at..at });
    }

    fn end_definition(&mut self) {
        let Some(mut def) = self.current.take() else { return };
        if self.tokens > self.budget {
            if def.fragment.is_none() {
                self.unspread.fold_max(&def.own, def.query);
            }
            return;
        }
        def.spreads.end = self.spreads.len();
        self.definitions.push(def);
    }

    fn own(&mut self) -> Option<&mut Counts> {
        self.current.as_mut().map(|d| &mut d.own)
    }

    fn read(&mut self, token: Token<'a>, next_is_colon: bool) {
        if token == Token::Punct(b'@') {
            if let Some(own) = self.own() {
                own.directives += 1;
            }
            if matches!(self.stack.last(), Some(Frame::Selection(_))) {
                if self.expect == Some(Expect::Spread) {
                    self.inline_fragment();
                }
                self.expect = Some(Expect::Directive);
            }
            return;
        }
        if self.overflow > 0 {
            match token {
                Token::Punct(b'(' | b'[' | b'{') => self.overflow += 1,
                Token::Punct(b')' | b']' | b'}') => self.overflow -= 1,
                _ => {}
            }
            return;
        }
        match (self.stack.last().copied(), token) {
            (_, Token::Punct(b'(' | b'[')) => self.push(Frame::Value),
            (Some(Frame::Value), Token::Punct(b'{')) => self.push(Frame::Value),
            (Some(Frame::Value), Token::Punct(b')' | b']' | b'}')) => {
                self.stack.pop();
            }
            (Some(Frame::Value), _) => {}
            (None, token) => self.read_top_level(token),
            (Some(Frame::Selection(at)), token) => self.read_selection(at, token, next_is_colon),
        }
    }

    fn read_top_level(&mut self, token: Token<'a>) {
        match token {
            Token::Name(name) if self.naming_fragment => {
                self.naming_fragment = false;
                if let Some(def) = self.current.as_mut() {
                    def.fragment = Some(name);
                }
            }
            Token::Name("fragment") if self.current.is_none() => self.begin_definition(true, false),
            Token::Name(kind @ ("query" | "mutation" | "subscription")) if self.current.is_none() => {
                self.begin_definition(false, kind == "query");
            }
            Token::Punct(b'{') => {
                if self.current.is_none() {
                    self.begin_definition(false, true);
                }
                self.naming_fragment = false;
                self.open(Selection { fields_above: 0, exempt: false });
            }
            _ => {}
        }
    }

    fn push(&mut self, frame: Frame) {
        if self.stack.len() < self.budget {
            self.stack.push(frame);
        } else {
            self.overflow += 1;
        }
    }

    fn open(&mut self, selection: Selection) {
        self.push(Frame::Selection(selection));
        self.expect = None;
        self.opens = None;
    }

    fn read_selection(&mut self, at: Selection, token: Token<'a>, next_is_colon: bool) {
        let expect = self.expect.take();
        match token {
            Token::Punct(b'{') => {
                if expect == Some(Expect::Spread) {
                    self.inline_fragment();
                }
                let opens = self.opens.unwrap_or(Opens::Same);
                let (fields_above, exempt) = match opens {
                    Opens::Field(introspection) => (at.fields_above + 1, at.exempt || introspection),
                    Opens::Same => (at.fields_above, at.exempt),
                };
                self.open(Selection { fields_above, exempt });
            }
            Token::Punct(b'}') => {
                self.stack.pop();
                self.opens = None;
                if self.stack.is_empty() {
                    self.end_definition();
                }
            }
            Token::Spread => self.expect = Some(Expect::Spread),
            Token::Name(name) => match expect {
                Some(Expect::Directive) => {}
                Some(Expect::Spread) if name == "on" => {
                    self.inline_fragment();
                    self.expect = Some(Expect::TypeCondition);
                }
                Some(Expect::Spread) => {
                    self.opens = None;
                    if let Some(own) = self.own() {
                        own.selections += 1;
                    }
                    if self.tokens <= self.budget {
                        self.spreads.push(SpreadAt { fragment: name, fields_above: at.fields_above, exempt: at.exempt });
                    }
                }
                Some(Expect::TypeCondition) => {}
                None if next_is_colon => {
                    if let Some(own) = self.own() {
                        own.aliases += 1;
                    }
                    self.expect = Some(Expect::Field);
                }
                Some(Expect::Field) | None => self.field(at, name),
            },
            Token::Punct(b':') => self.expect = expect.filter(|e| *e == Expect::Field),
            _ => {}
        }
    }

    /// `...` with a type condition, directives or straight a `{`: its
    /// selections are at the level of the set it is in.
    fn inline_fragment(&mut self) {
        self.opens = Some(Opens::Same);
        if let Some(own) = self.own() {
            own.selections += 1;
        }
    }

    fn field(&mut self, at: Selection, name: &str) {
        let introspection = at.fields_above == 0 && matches!(name, "__schema" | "__type");
        self.opens = Some(Opens::Field(introspection));
        let Some(own) = self.own() else { return };
        own.selections += 1;
        if name == "__typename" {
            return;
        }
        let level = at.fields_above + 1;
        if at.fields_above == 0 {
            own.root_fields += 1;
        }
        own.depth = own.depth.max(level);
        if !at.exempt {
            own.depth_at_root = own.depth_at_root.max(level);
        }
    }

    fn finish(self) -> Measured {
        let mut measured = Measured { tokens: self.tokens, over_budget: self.tokens > self.budget, ..Measured::default() };
        let mut largest = self.unspread.clone();
        match fragment_totals(&self.definitions, &self.spreads) {
            Ok(fragments) => {
                for def in &self.definitions {
                    match def.fragment {
                        // Validation walks every fragment, used or not (an
                        // unused one is refused only after the walk). Where
                        // one is used its counts are within its operation's;
                        // its root and depth mean something only there.
                        Some(name) => {
                            if let Some(counts) = fragments.get(name) {
                                largest.fold_max(&Counts { root_fields: 0, depth: 0, depth_at_root: 0, ..counts.clone() }, false);
                            }
                        }
                        None => {
                            let mut counts = def.own.clone();
                            for spread in &self.spreads[def.spreads.clone()] {
                                if let Some(of) = fragments.get(spread.fragment) {
                                    counts.add(spread, of);
                                }
                            }
                            largest.fold_max(&counts, def.query);
                        }
                    }
                }
            }
            Err(cycle) => measured.cycle = Some(cycle),
        }
        measured.aliases = largest.aliases;
        measured.root_fields = largest.root_fields;
        measured.directives = largest.directives;
        measured.depth = largest.depth;
        measured.selections = largest.selections;
        measured
    }
}

/// Each fragment's counts with what it spreads added (by name; the first
/// of a name counts), each fragment measured once; or the first cycle.
fn fragment_totals<'a>(definitions: &[Definition<'a>], spreads: &[SpreadAt<'a>]) -> Result<HashMap<&'a str, Counts>, Vec<String>> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, def) in definitions.iter().enumerate() {
        if let Some(name) = def.fragment {
            index.entry(name).or_insert(i);
        }
    }
    let mut mark = vec![Mark::New; definitions.len()];
    let mut totals: Vec<Option<Counts>> = vec![None; definitions.len()];
    for start in 0..definitions.len() {
        if definitions[start].fragment.is_none() || mark[start] != Mark::New {
            continue;
        }
        // Depth first without recursion: a chain of fragments may be as
        // long as the document allows.
        mark[start] = Mark::Open;
        let mut stack = vec![(start, definitions[start].spreads.start)];
        while let Some(top) = stack.last_mut() {
            let (def, next) = *top;
            let range = definitions[def].spreads.clone();
            if next < range.end {
                top.1 += 1;
                let Some(&to) = index.get(spreads[next].fragment) else { continue };
                match mark[to] {
                    Mark::New => {
                        mark[to] = Mark::Open;
                        stack.push((to, definitions[to].spreads.start));
                    }
                    Mark::Open => {
                        let from = stack.iter().position(|&(d, _)| d == to).unwrap_or(0);
                        let name = |d: usize| definitions[d].fragment.unwrap_or_default().to_owned();
                        return Err(stack[from..].iter().map(|&(d, _)| name(d)).chain([name(to)]).collect());
                    }
                    Mark::Done => {}
                }
            } else {
                let mut counts = definitions[def].own.clone();
                for spread in &spreads[range] {
                    if let Some(of) = index.get(spread.fragment).and_then(|&t| totals[t].as_ref()) {
                        counts.add(spread, of);
                    }
                }
                totals[def] = Some(counts);
                mark[def] = Mark::Done;
                stack.pop();
            }
        }
    }
    Ok(index.into_iter().filter_map(|(name, i)| totals[i].take().map(|c| (name, c))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Measured {
        measure(text, usize::MAX)
    }

    #[test]
    fn aliases_root_fields_and_directives_are_counted_per_operation() {
        let m = all("query A { a: me { id } b: me { x: id } c @skip(if: true) { id } } query B { d e f g }");
        assert_eq!((m.aliases, m.root_fields, m.directives), (3, 4, 1));
        // Argument names and object fields are not aliases; `__typename` is no root field.
        let m = all("{ f(a: { b: 1 }, c: [{ d: 2 }]) @include(if: $x) __typename }");
        assert_eq!((m.aliases, m.root_fields, m.directives, m.selections), (0, 1, 1, 2));
        // Directives count wherever they are: operation, variables, spreads, fragments.
        let m = all("query Q($v: Int @a) @b { ...F @c ... @d { x } } fragment F on Q @e { y @f }");
        assert_eq!(m.directives, 6);
        // Inline fragments are selections; what they select is at their level.
        let m = all("{ ... on Q { a } ... @skip(if: true) { b { c } } ... { d } }");
        assert_eq!((m.selections, m.root_fields, m.depth), (7, 3, 2));
    }

    #[test]
    fn a_fragment_counts_each_time_it_is_spread() {
        let m = all("{ a { ...F } b { ...F } ...F } fragment F on T { x: id y: id }");
        assert_eq!(m.aliases, 6);
        // Its root fields count only where it is spread at the root.
        assert_eq!(m.root_fields, 4);
        // Four selections (fields and spreads) and three spreads of two fields.
        assert_eq!(m.selections, 5 + 6);
    }

    #[test]
    fn fragments_spreading_the_next_twice_are_measured_once_each() {
        let mut q = String::from("{ ...F0 }");
        for i in 0..80 {
            q.push_str(&format!(" fragment F{i} on Query {{ ...F{} ...F{} }}", i + 1, i + 1));
        }
        q.push_str(" fragment F80 on Query { __typename }");
        let m = all(&q);
        assert_eq!(m.selections, usize::MAX, "2^81 selections, saturated");
        assert_eq!(m.cycle, None);
    }

    #[test]
    fn an_unused_fragment_counts_for_what_validation_walks_but_not_for_depth() {
        let m = all("{ a } fragment F on T { b { c { d { x: e y: e } } } }");
        assert_eq!((m.aliases, m.selections, m.depth, m.root_fields), (2, 5, 1, 1));
    }

    #[test]
    fn a_fragment_cycle_is_found_and_named() {
        let m = all("{ ...A } fragment A on Q { a { ...B } } fragment B on Q { b { ...C } } fragment C on Q { ...A }");
        assert_eq!(m.cycle, Some(vec!["A".into(), "B".into(), "C".into(), "A".into()]));
        let m = all("fragment S on Q { ...S } { ...S }");
        assert_eq!(m.cycle, Some(vec!["S".into(), "S".into()]));
        // An unknown fragment is no cycle; validation refuses it.
        assert_eq!(all("{ ...Nope }").cycle, None);
    }

    #[test]
    fn past_the_budget_only_tokens_and_what_operations_hold_themselves_are_counted() {
        let aliases: String = (0..100).map(|i| format!("a{i}: me ")).collect();
        let m = measure(&format!("{{ {aliases} ...F }} fragment F on Q {{ x: a }}"), 10);
        assert!(m.over_budget);
        assert_eq!((m.tokens, m.aliases, m.root_fields), (313, 100, 100));
        // Nesting past the budget is counted, not held.
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(10_000), "]".repeat(10_000));
        let m = measure(&deep, 100);
        assert_eq!((m.tokens, m.root_fields), (20_008, 1));
    }


    /// The same counts from async-graphql's parsed document, walked the
    /// slow way (every spread followed), for documents small enough.
    mod parsed {
        use async_graphql::parser::{
            parse_query,
            types::{ExecutableDocument, OperationType, Selection, SelectionSet},
        };

        #[derive(Debug, Default, PartialEq, Eq)]
        pub struct Counts {
            pub aliases: usize,
            pub root_fields: usize,
            pub directives: usize,
            pub depth: usize,
            pub selections: usize,
        }

        pub fn counts(text: &str) -> Counts {
            let doc = parse_query(text).unwrap();
            let mut largest = Counts::default();
            for (_, op) in doc.operations.iter() {
                let mut c = Counts { directives: op.node.directives.len(), ..Counts::default() };
                c.directives += op.node.variable_definitions.iter().map(|v| v.node.directives.len()).sum::<usize>();
                let query = op.node.ty == OperationType::Query;
                c.depth = walk(&doc, &op.node.selection_set.node, 0, query, &mut c);
                largest.aliases = largest.aliases.max(c.aliases);
                largest.root_fields = largest.root_fields.max(c.root_fields);
                largest.directives = largest.directives.max(c.directives);
                largest.depth = largest.depth.max(c.depth);
                largest.selections = largest.selections.max(c.selections);
            }
            largest
        }

        /// Counts into `c`; returns the depth below `set`, `above` fields up.
        fn walk(doc: &ExecutableDocument, set: &SelectionSet, above: usize, root: bool, c: &mut Counts) -> usize {
            let mut deepest = 0;
            for selection in &set.items {
                c.selections += 1;
                let depth = match &selection.node {
                    Selection::Field(f) => {
                        c.aliases += usize::from(f.node.alias.is_some());
                        c.directives += f.node.directives.len();
                        let name = f.node.name.node.as_str();
                        if above == 0 && name != "__typename" {
                            c.root_fields += 1;
                        }
                        let below = walk(doc, &f.node.selection_set.node, above + 1, false, c);
                        match name {
                            "__typename" => 0,
                            "__schema" | "__type" if root && above == 0 => 1,
                            _ => 1 + below,
                        }
                    }
                    Selection::InlineFragment(i) => {
                        c.directives += i.node.directives.len();
                        walk(doc, &i.node.selection_set.node, above, root, c)
                    }
                    Selection::FragmentSpread(s) => {
                        c.directives += s.node.directives.len();
                        let fragment = &doc.fragments[&s.node.fragment_name.node];
                        c.directives += fragment.node.directives.len();
                        walk(doc, &fragment.node.selection_set.node, above, root, c)
                    }
                };
                deepest = deepest.max(depth);
            }
            deepest
        }
    }

    #[test]
    fn the_text_is_counted_as_the_parsed_document_would_be() {
        let documents = [
            include_str!("../../../tests/fixtures/introspection_query.graphql"),
            "{ projects(first: 50) { edges { node { name client { name } documents(first: 5) { name sizeBytes uploader { email } } } } } }",
            "query Q($a: In = { x: [1, { y: \"}\" }] }, $b: [Int!] = [1 2]) @o { a: f(x: $a) @d(i: { k: \"{\" }) { ...F ... on T @i { b: g } } }
             fragment F on T @fd { h { i: j k } ...G } fragment G on T { ... { l @d } }",
            "mutation M { a: m(s: \"\"\"{ } \\\"\"\" \"\"\") { x } b: m { ...F } } fragment F on X { y { z } }  # { not a field }",
            "{ __typename a { __typename b } ... on Query { __schema { types { name fields { name } } } } }",
            "query A { x { y } } query B { z: w(on: 1) { on } ... on Query { __type(name: \"T\") { ofType { ofType { name } } } } }",
            "{ a { ...F } } fragment F on T { __schema { types { name } } }",
        ];
        for document in documents {
            let text = all(document);
            let from_text = parsed::Counts {
                aliases: text.aliases,
                root_fields: text.root_fields,
                directives: text.directives,
                depth: text.depth,
                selections: text.selections,
            };
            assert_eq!(from_text, parsed::counts(document), "{document}");
        }
    }
}
