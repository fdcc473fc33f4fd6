//! `schema.graphql` is the schema in code. When they differ this test
//! rewrites the file and fails, so the change shows up in review. And the
//! schema's depth limit: counted on the text as async-graphql counted it on
//! the parsed document, without introspection's own nesting, refused before
//! anything runs.

use aggios::graphql::{SchemaOptions, build_schema, shape};
use serde_json::json;

use crate::helpers::*;

#[test]
fn schema_graphql_matches_the_schema_in_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql");
    let sdl = build_schema(SchemaOptions { production: false, limits: Default::default() }).sdl();
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != sdl {
        std::fs::write(&path, &sdl).unwrap();
        panic!("schema.graphql was out of date and has been rewritten; review and commit it");
    }
}

/// graphql-js `getIntrospectionQuery()`, as GraphiQL and graphql-codegen send it.
pub const INTROSPECTION_QUERY: &str = include_str!("../fixtures/introspection_query.graphql");

fn depth(query: &str) -> usize {
    shape::measure(query, usize::MAX).depth
}

#[test]
fn depth_is_counted_as_async_graphql_counted_it() {
    // The cases of async-graphql 7.2's own depth test, with its answers.
    assert_eq!(depth("{ value }"), 1);
    assert_eq!(depth("{ obj { a b } }"), 2);
    assert_eq!(depth("{ obj { a b c { a b c { a b } } } }"), 4);
    assert_eq!(
        depth("fragment A on MyObj { a b ... A2 } fragment A2 on MyObj { obj { a } } query { obj { ... A } }"),
        3
    );
    assert_eq!(depth("{ obj { ... on MyObj { a b ... on MyObj { obj { a } } } } }"), 3);
    // `__typename` is no level; the deepest operation of a document counts.
    assert_eq!(depth("{ obj { __typename } }"), 1);
    assert_eq!(depth("query A { a } query B { b { c { d } } }"), 3);
}

#[test]
fn introspection_at_the_query_root_counts_one_level() {
    assert_eq!(depth(INTROSPECTION_QUERY), 1);
    assert_eq!(depth("{ __type(name: \"Client\") { fields { type { ofType { ofType { name } } } } } }"), 1);
    assert_eq!(depth("{ ... on Query { ...I } } fragment I on Query { __schema { types { name } } }"), 1);
    // Only the query root's introspection fields are exempt.
    assert_eq!(depth("{ a { __schema { types { name } } } }"), 4);
    assert_eq!(depth("mutation { __schema { types { name } } }"), 3);
}

#[test]
fn a_fragment_counts_as_deep_as_it_nests_where_it_is_spread() {
    assert_eq!(depth("{ a { ...F } } fragment F on T { b { c } }"), 3);
    // At a query's root, a fragment's own introspection is exempt too.
    assert_eq!(depth("{ ...F } fragment F on Query { __schema { types { name } } }"), 1);
    assert_eq!(depth("{ a { ...F } } fragment F on T { __schema { types { name } } }"), 4);
}

/// `projects(first: 1) { client { … } }`, `pairs` times, around `name`.
fn projects_and_clients(pairs: usize) -> String {
    let mut inner = "name".to_owned();
    for _ in 0..pairs {
        inner = format!("projects(first: 1) {{ client {{ {inner} }} }}");
    }
    inner
}

#[tokio::test]
async fn an_operation_nested_deeper_than_twelve_is_refused_before_anything_runs() {
    let app = TestApp::new(Backend::Sqlite).await;
    let owner = app.sign_up("deep").await;
    // createClient 1, five pairs 2..11, then `projects` 12 and `name` 13.
    let create = format!(
        "mutation {{ createClient(input: {{ name: \"Deep\" }}) {{ {} }} }}",
        projects_and_clients(5).replacen("name", "projects(first: 1) { name }", 1)
    );
    assert_eq!(depth(&create), 13);
    let a = app.gql_as(&host("deep"), &owner.access, &create).await;
    assert_eq!(a.code(), Some("QUERY_TOO_DEEP"), "{:?}", a.body);
    let err = &a.body["errors"][0];
    assert_eq!(err["extensions"]["depth"], 13, "{:?}", a.body);
    assert_eq!(err["extensions"]["limit"], 12, "{:?}", a.body);
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("nested 13 levels deep") && msg.contains("the limit is 12"), "{msg}");
    assert!(a.body["data"].is_null(), "{:?}", a.body);
    // The mutation never ran.
    let listed = app.gql_as(&host("deep"), &owner.access, "{ clients { edges { node { name } } } }").await;
    assert_eq!(listed.body["data"]["clients"]["edges"], json!([]), "{:?}", listed.body);

    // Twelve levels are allowed.
    let created = app.gql_as(&host("deep"), &owner.access, "mutation { createClient(input: { name: \"Deep\" }) { id } }").await;
    assert!(created.body["errors"].is_null(), "{:?}", created.body);
    let twelve = format!("{{ clients(first: 1) {{ edges {{ node {{ {} }} }} }} }}", projects_and_clients(4));
    assert_eq!(depth(&twelve), 12);
    let a = app.gql_as(&host("deep"), &owner.access, &twelve).await;
    assert!(a.body["errors"].is_null(), "{:?}", a.body);
    assert_eq!(a.body["data"]["clients"]["edges"][0]["node"]["projects"], json!([]), "it ran: {:?}", a.body);
}
