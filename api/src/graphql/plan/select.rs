//! From a root field's selection to a plan: fields collected as GraphQL's
//! CollectFields does (fragments flattened, fields of one response key
//! merged, first appearance first), arguments read with the request's
//! variables. `None` means "not for a plan": the resolvers answer.

use std::collections::HashMap;

use async_graphql::{
    Context, Name, Positioned, Value,
    parser::types::{Field, FragmentDefinition, Selection, SelectionSet},
};

use super::{ConnPick, ConnPlan, EdgePick, Obj, PageInfoPick, Pick, Rel, Ty};
use crate::store::page::MAX_PAGE;

struct Walk<'a> {
    ctx: &'a Context<'a>,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    /// API keys read no users: `uploader` is an error for them, which the
    /// resolvers report.
    api_key: bool,
}

type Collected<'a> = Vec<(Name, &'a Field, Vec<&'a SelectionSet>)>;

impl<'a> Walk<'a> {
    fn new(ctx: &'a Context<'a>) -> Option<Self> {
        let request = crate::graphql::request(ctx).ok()?;
        let api_key = matches!(request.principal, crate::auth::Principal::ApiKey(_));
        Some(Self { ctx, fragments: &ctx.query_env.fragments, api_key })
    }

    fn collect(&self, sets: &[&'a SelectionSet], on: &str) -> Option<Collected<'a>> {
        let mut out = Vec::new();
        for set in sets {
            self.add(set, on, &mut out)?;
        }
        Some(out)
    }

    /// `@skip`/`@include` are gone by now (the executor removes skipped
    /// selections first); any other directive is left to the resolvers.
    fn add(&self, set: &'a SelectionSet, on: &str, out: &mut Collected<'a>) -> Option<()> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if !field.directives.is_empty() {
                        return None;
                    }
                    let key = field.response_key().node.clone();
                    match out.iter_mut().find(|(k, ..)| *k == key) {
                        Some((_, _, sets)) => sets.push(&field.selection_set.node),
                        None => out.push((key, field, vec![&field.selection_set.node])),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if !spread.node.directives.is_empty() {
                        return None;
                    }
                    let fragment = &self.fragments.get(&spread.node.fragment_name.node)?.node;
                    if fragment.type_condition.node.on.node != on {
                        return None;
                    }
                    self.add(&fragment.selection_set.node, on, out)?;
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let applies = inline.type_condition.as_ref().is_none_or(|c| c.node.on.node == on);
                    if !inline.directives.is_empty() || !applies {
                        return None;
                    }
                    self.add(&inline.selection_set.node, on, out)?;
                }
            }
        }
        Some(())
    }

    fn variable(&self, name: &Name) -> Option<Value> {
        let env = &self.ctx.query_env;
        env.variables.get(name).cloned().or_else(|| {
            env.operation
                .node
                .variable_definitions
                .iter()
                .find(|d| d.node.name.node == *name)
                .and_then(|d| d.node.default_value().cloned())
        })
    }

    /// A nested list's `first`, when it is in range; out of range is the
    /// resolvers' error to report.
    fn first(&self, field: &Field, default: u64) -> Option<u64> {
        let Some(arg) = field.get_argument("first") else { return Some(default) };
        let value = arg.node.clone().into_const_with(|name| self.variable(&name).ok_or(())).ok()?;
        let Value::Number(n) = value else { return None };
        n.as_u64().filter(|n| *n <= MAX_PAGE)
    }

    fn obj(&self, ty: Ty, sets: &[&'a SelectionSet]) -> Option<Obj> {
        let mut fields = Vec::new();
        for (key, field, sub) in self.collect(sets, ty.name())? {
            let name = field.name.node.as_str();
            let pick = if name == "__typename" {
                Pick::Typename
            } else if let Some(scalar) = scalar(ty, name) {
                if !field.arguments.is_empty() {
                    return None;
                }
                Pick::Scalar(scalar)
            } else {
                let (rel, child) = match (ty, name) {
                    (Ty::Project, "client") => (Rel::ProjectClient, Ty::Client),
                    (Ty::Project, "documents") => (Rel::ProjectDocuments(self.first(field, 5)?), Ty::Document),
                    (Ty::Client, "projects") => (Rel::ClientProjects(self.first(field, 20)?), Ty::Project),
                    (Ty::Document, "project") => (Rel::DocumentProject, Ty::Project),
                    (Ty::Document, "client") => (Rel::DocumentClient, Ty::Client),
                    (Ty::Document, "uploader") if !self.api_key => (Rel::DocumentUploader, Ty::User),
                    _ => return None,
                };
                Pick::Rel(rel, self.obj(child, &sub)?)
            };
            fields.push((key, pick));
        }
        Some(Obj { ty, fields })
    }

    fn connection(&self, node: Ty, sets: &[&'a SelectionSet]) -> Option<ConnPlan> {
        let conn_type = format!("{}Connection", node.name());
        let edge_type = format!("{}Edge", node.name());
        let mut fields = Vec::new();
        for (key, field, sub) in self.collect(sets, &conn_type)? {
            let pick = match field.name.node.as_str() {
                "__typename" => ConnPick::Typename,
                "nodes" => ConnPick::Nodes(self.obj(node, &sub)?),
                "edges" => {
                    let mut edge = Vec::new();
                    for (key, field, sub) in self.collect(&sub, &edge_type)? {
                        let pick = match field.name.node.as_str() {
                            "__typename" => EdgePick::Typename,
                            "cursor" => EdgePick::Cursor,
                            "node" => EdgePick::Node(self.obj(node, &sub)?),
                            _ => return None,
                        };
                        edge.push((key, pick));
                    }
                    ConnPick::Edges(edge)
                }
                "pageInfo" => {
                    let mut info = Vec::new();
                    for (key, field, _) in self.collect(&sub, "PageInfo")? {
                        let pick = match field.name.node.as_str() {
                            "__typename" => PageInfoPick::Typename,
                            "hasPreviousPage" => PageInfoPick::HasPreviousPage,
                            "hasNextPage" => PageInfoPick::HasNextPage,
                            "startCursor" => PageInfoPick::StartCursor,
                            "endCursor" => PageInfoPick::EndCursor,
                            _ => return None,
                        };
                        info.push((key, pick));
                    }
                    ConnPick::PageInfo(info)
                }
                _ => return None,
            };
            fields.push((key, pick));
        }
        Some(ConnPlan { node, fields })
    }
}

/// The scalar and enum fields of each type, answered from its row.
fn scalar(ty: Ty, name: &str) -> Option<&'static str> {
    const CLIENT: &[&str] = &["id", "name", "email", "phone", "status", "notes", "createdAt", "updatedAt"];
    const PROJECT: &[&str] = &["id", "name", "description", "status", "dueDate", "createdAt", "updatedAt"];
    const DOCUMENT: &[&str] =
        &["id", "name", "contentType", "sizeBytes", "checksumSha256", "currentVersion", "createdAt", "updatedAt"];
    const USER: &[&str] = &["id", "email", "firstName", "lastName", "role", "isActive", "createdAt"];
    let names = match ty {
        Ty::Client => CLIENT,
        Ty::Project => PROJECT,
        Ty::Document => DOCUMENT,
        Ty::User => USER,
    };
    names.iter().copied().find(|n| *n == name)
}

/// The plan for a connection root field (`projects(first: 50) { … }`).
pub(crate) fn plan_connection(ctx: &Context<'_>, node: Ty) -> Option<ConnPlan> {
    let walk = Walk::new(ctx)?;
    walk.connection(node, &[&ctx.item.node.selection_set.node])
}

/// The plan for a single-object root field (`project(id: …) { … }`).
pub(crate) fn plan_object(ctx: &Context<'_>, ty: Ty) -> Option<Obj> {
    let walk = Walk::new(ctx)?;
    walk.obj(ty, &[&ctx.item.node.selection_set.node])
}
