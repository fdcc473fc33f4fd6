//! `schema.graphql` is the schema in code. When they differ this test
//! rewrites the file and fails, so the change shows up in review.

use aggios::graphql::{SchemaOptions, build_schema};

#[test]
fn schema_graphql_matches_the_schema_in_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql");
    let sdl = build_schema(SchemaOptions { production: false }).sdl();
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != sdl {
        std::fs::write(&path, &sdl).unwrap();
        panic!("schema.graphql was out of date and has been rewritten; review and commit it");
    }
}
