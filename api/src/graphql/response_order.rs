//! Fields in the order they were asked. async-graphql resolves the fields
//! of a query concurrently and keeps them in the order they finish
//! (async-graphql#612), so a field that waited on a dataloader comes after
//! one that did not. The spec asks for the selection's order (CollectFields:
//! fragments flattened, first appearance first), and the planned reads
//! build it; this extension puts the resolvers' answers in the same order,
//! so that both paths give the same bytes and clients see what they asked.

use std::{
    cell::OnceCell,
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use async_graphql::{
    Name, Positioned, Response, ServerResult, Value, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery},
    parser::types::{DocumentOperations, ExecutableDocument, FragmentDefinition, Selection, SelectionSet},
};

pub struct ResponseOrder;

impl ExtensionFactory for ResponseOrder {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest(Mutex::default()))
    }
}

struct PerRequest(Mutex<Option<ExecutableDocument>>);

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(document.clone());
        Ok(document)
    }

    async fn execute(&self, ctx: &ExtensionContext<'_>, operation_name: Option<&str>, next: NextExecute<'_>) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        let document = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(document) = document {
            let operation = match &document.operations {
                DocumentOperations::Single(op) => Some(op),
                DocumentOperations::Multiple(ops) => operation_name.and_then(|n| ops.get(n)),
            };
            if let Some(op) = operation {
                let root = Node::new(Name::new("data"), vec![&op.node.selection_set.node]);
                put_in_order(&mut response.data, root.children(&document.fragments), &document.fragments);
            }
        }
        response
    }
}

/// A response key and the selection sets merged under it; its children
/// are collected once, however many list items share them.
struct Node<'a> {
    key: Name,
    sets: Vec<&'a SelectionSet>,
    children: OnceCell<Vec<Node<'a>>>,
}

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

impl<'a> Node<'a> {
    fn new(key: Name, sets: Vec<&'a SelectionSet>) -> Self {
        Self { key, sets, children: OnceCell::new() }
    }

    fn children(&self, fragments: &'a Fragments) -> &[Node<'a>] {
        self.children.get_or_init(|| {
            let mut out: Vec<Node<'a>> = Vec::new();
            for set in &self.sets {
                collect(set, fragments, &mut out);
            }
            out
        })
    }
}

fn collect<'a>(set: &'a SelectionSet, fragments: &'a Fragments, out: &mut Vec<Node<'a>>) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.clone();
                let sub = &field.node.selection_set.node;
                match out.iter_mut().find(|n| n.key == key) {
                    Some(node) => node.sets.push(sub),
                    None => out.push(Node::new(key, vec![sub])),
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = fragments.get(&spread.node.fragment_name.node) {
                    collect(&fragment.node.selection_set.node, fragments, out);
                }
            }
            Selection::InlineFragment(inline) => collect(&inline.node.selection_set.node, fragments, out),
        }
    }
}

fn put_in_order<'a>(value: &mut Value, nodes: &[Node<'a>], fragments: &'a Fragments) {
    match value {
        Value::List(items) => {
            for item in items {
                put_in_order(item, nodes, fragments);
            }
        }
        Value::Object(map) => {
            let rank = |key: &Name| nodes.iter().position(|n| n.key == *key).unwrap_or(usize::MAX);
            if !map.keys().map(rank).is_sorted() {
                map.sort_by_cached_key(|key, _| rank(key));
            }
            for (key, value) in map.iter_mut() {
                if let Some(node) = nodes.iter().find(|n| n.key == *key)
                    && matches!(value, Value::Object(_) | Value::List(_))
                {
                    put_in_order(value, node.children(fragments), fragments);
                }
            }
        }
        _ => {}
    }
}
