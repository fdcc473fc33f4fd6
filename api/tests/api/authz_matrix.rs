//! The authorization matrix: every root query and mutation of the schema,
//! for every kind of caller. The fields come from the schema itself, so a new
//! field without a row here fails the test.

use std::collections::BTreeSet;

use aggios::graphql::{SchemaOptions, build_schema};
use serde_json::json;

use crate::helpers::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Member,
    Admin,
    Owner,
    ReadKey,
    ReadWriteKey,
    OtherTenantUser,
    PlatformAdmin,
}

const CALLERS: [Caller; 8] = [
    Caller::Anonymous,
    Caller::Member,
    Caller::Admin,
    Caller::Owner,
    Caller::ReadKey,
    Caller::ReadWriteKey,
    Caller::OtherTenantUser,
    Caller::PlatformAdmin,
];

const OK: &str = "OK";
const UNAUTH: &str = "UNAUTHENTICATED";
const FORBID: &str = "FORBIDDEN";

#[derive(Debug, Clone, Copy)]
enum Where {
    /// The agency's own host, `acme.aggios.test`.
    Tenant,
    /// The general API host without `X-Tenant`.
    Api,
}

struct Rule {
    field: &'static str,
    at: Where,
    /// `{n}` is replaced by the caller's index, `{victim}`, `{spare_key}`,
    /// `{spare_tenant}` and `{admin_email}` by ids of the world.
    op: &'static str,
    /// Outcomes in the order of `CALLERS`.
    expect: [&'static str; 8],
}

fn rules() -> Vec<Rule> {
    let signed_in = [UNAUTH, OK, OK, OK, FORBID, FORBID, UNAUTH, UNAUTH];
    let admin_only = [UNAUTH, FORBID, OK, OK, FORBID, FORBID, UNAUTH, UNAUTH];
    let platform = [UNAUTH, UNAUTH, UNAUTH, UNAUTH, "TENANT_REQUIRED", "TENANT_REQUIRED", UNAUTH, OK];
    // Credentials refused on the API host (users' tokens are for their
    // agency's host) do not stop signing up; keys there need a tenant.
    let sign_in_on_api = [OK, OK, OK, OK, "TENANT_REQUIRED", "TENANT_REQUIRED", OK, OK];
    let domain_read = [UNAUTH, OK, OK, OK, OK, OK, UNAUTH, UNAUTH];
    let domain_write = [UNAUTH, OK, OK, OK, FORBID, OK, UNAUTH, UNAUTH];
    let upload_write = [UNAUTH, "BAD_USER_INPUT", "BAD_USER_INPUT", "BAD_USER_INPUT", FORBID, "BAD_USER_INPUT", UNAUTH, UNAUTH];
    // Deleting twice: the first allowed caller deletes, later ones find nothing.
    let domain_delete = [UNAUTH, FORBID, OK, "NOT_FOUND", FORBID, "NOT_FOUND", UNAUTH, UNAUTH];
    vec![
        Rule { field: "tenant", at: Where::Tenant, op: "{ tenant { id } }", expect: [OK, OK, OK, OK, OK, OK, UNAUTH, UNAUTH] },
        Rule { field: "me", at: Where::Tenant, op: "{ me { id } }", expect: signed_in },
        Rule { field: "mySessions", at: Where::Tenant, op: "{ mySessions { id } }", expect: signed_in },
        Rule { field: "users", at: Where::Tenant, op: "{ users { id } }", expect: admin_only },
        Rule { field: "user", at: Where::Tenant, op: "{ user(id: \"{victim}\") { id } }", expect: admin_only },
        Rule { field: "apiKeys", at: Where::Tenant, op: "{ apiKeys { id } }", expect: admin_only },
        Rule { field: "clients", at: Where::Tenant, op: "{ clients { edges { node { id } } } }", expect: domain_read },
        Rule { field: "client", at: Where::Tenant, op: "{ client(id: \"{client}\") { id } }", expect: domain_read },
        Rule { field: "projects", at: Where::Tenant, op: "{ projects { edges { node { id } } } }", expect: domain_read },
        Rule { field: "project", at: Where::Tenant, op: "{ project(id: \"{project}\") { id } }", expect: domain_read },
        Rule { field: "documents", at: Where::Tenant, op: "{ documents { edges { node { id } } } }", expect: domain_read },
        Rule { field: "document", at: Where::Tenant, op: "{ document(id: \"{document}\") { id } }", expect: domain_read },
        Rule { field: "auditEvents", at: Where::Tenant, op: "{ auditEvents { edges { node { id } } } }", expect: admin_only },
        Rule { field: "createClient", at: Where::Tenant, op: "mutation { createClient(input: { name: \"C{n}\" }) { id } }", expect: domain_write },
        Rule { field: "updateClient", at: Where::Tenant, op: "mutation { updateClient(id: \"{client}\", input: { name: \"C{n}\" }) { id } }", expect: domain_write },
        Rule { field: "deleteClient", at: Where::Tenant, op: "mutation { deleteClient(id: \"{spare_client}\") }", expect: domain_delete },
        Rule { field: "createProject", at: Where::Tenant, op: "mutation { createProject(input: { clientId: \"{client}\", name: \"P{n}\" }) { id } }", expect: domain_write },
        Rule { field: "updateProject", at: Where::Tenant, op: "mutation { updateProject(id: \"{project}\", input: { status: ACTIVE }) { id } }", expect: domain_write },
        Rule { field: "deleteProject", at: Where::Tenant, op: "mutation { deleteProject(id: \"{spare_project}\") }", expect: domain_delete },
        // Past the guard, a caller without a file is told so: that answer
        // proves the guard let it through.
        Rule {
            field: "uploadDocument",
            at: Where::Tenant,
            op: "mutation { uploadDocument(input: { projectId: \"{project}\", file: \"#__graphql_file__:0\" }) { id } }",
            expect: upload_write,
        },
        Rule {
            field: "uploadDocumentVersion",
            at: Where::Tenant,
            op: "mutation { uploadDocumentVersion(documentId: \"{document}\", file: \"#__graphql_file__:0\") { id } }",
            expect: upload_write,
        },
        Rule {
            field: "requestDocumentUpload",
            at: Where::Tenant,
            op: "mutation { requestDocumentUpload(input: { projectId: \"{project}\", name: \"d{n}.pdf\", contentType: \"application/pdf\", sizeBytes: 10 }) { uploadToken } }",
            expect: domain_write,
        },
        Rule { field: "confirmDocumentUpload", at: Where::Tenant, op: "mutation { confirmDocumentUpload(uploadToken: \"forged\") { id } }", expect: upload_write },
        Rule { field: "storageUsage", at: Where::Tenant, op: "{ storageUsage { usedBytes } }", expect: domain_read },
        Rule { field: "updateDocument", at: Where::Tenant, op: "mutation { updateDocument(id: \"{document}\", input: { name: \"r{n}.pdf\" }) { id } }", expect: domain_write },
        Rule { field: "deleteDocument", at: Where::Tenant, op: "mutation { deleteDocument(id: \"{spare_document}\") }", expect: domain_delete },
        Rule { field: "trustedDocumentManifests", at: Where::Tenant, op: "{ trustedDocumentManifests { id } }", expect: admin_only },
        Rule { field: "trustedDocumentSettings", at: Where::Tenant, op: "{ trustedDocumentSettings { mode } }", expect: admin_only },
        Rule {
            field: "uploadTrustedDocuments",
            at: Where::Tenant,
            op: "mutation { uploadTrustedDocuments(manifest: { q{n}: \"{ tenant { id } }\" }) { version } }",
            expect: admin_only,
        },
        Rule { field: "setTrustedDocumentsMode", at: Where::Tenant, op: "mutation { setTrustedDocumentsMode(mode: OFF) { mode } }", expect: admin_only },
        Rule { field: "platformTenants", at: Where::Api, op: "{ platformTenants { id } }", expect: platform },
        Rule {
            field: "signUp",
            at: Where::Api,
            op: "mutation { signUp(input: { agencyName: \"New {n}\", subdomain: \"new-agency-{n}\", email: \"o@new{n}.com\", password: \"tundra velvet orbit 42\", firstName: \"O\", lastName: \"N\" }) { accessToken } }",
            expect: sign_in_on_api,
        },
        Rule {
            field: "login",
            at: Where::Tenant,
            op: "mutation { login(input: { email: \"owner@acme.com\", password: \"not the password\" }) { accessToken } }",
            expect: ["INVALID_CREDENTIALS"; 8],
        },
        Rule {
            field: "refreshSession",
            at: Where::Tenant,
            op: "mutation { refreshSession(refreshToken: \"rt.not.valid\") { accessToken } }",
            expect: [UNAUTH; 8],
        },
        Rule { field: "logout", at: Where::Tenant, op: "mutation { logout }", expect: signed_in },
        Rule { field: "logoutEverywhere", at: Where::Tenant, op: "mutation { logoutEverywhere }", expect: signed_in },
        Rule {
            field: "revokeSession",
            at: Where::Tenant,
            op: "mutation { revokeSession(id: \"01a20e40-0000-7000-8000-000000000000\") }",
            expect: [UNAUTH, "NOT_FOUND", "NOT_FOUND", "NOT_FOUND", FORBID, FORBID, UNAUTH, UNAUTH],
        },
        Rule {
            field: "changePassword",
            at: Where::Tenant,
            op: "mutation { changePassword(input: { currentPassword: \"wrong\", newPassword: \"lunar teapot garden 7\" }) { accessToken } }",
            expect: [UNAUTH, "BAD_USER_INPUT", "BAD_USER_INPUT", "BAD_USER_INPUT", FORBID, FORBID, UNAUTH, UNAUTH],
        },
        Rule {
            field: "createUser",
            at: Where::Tenant,
            op: "mutation { createUser(input: { email: \"new{n}@acme.com\", password: \"tundra velvet orbit 42\", firstName: \"N\", lastName: \"U\", role: MEMBER }) { id } }",
            expect: admin_only,
        },
        Rule { field: "updateUser", at: Where::Tenant, op: "mutation { updateUser(id: \"{victim}\", input: { firstName: \"Renamed\" }) { id } }", expect: admin_only },
        Rule { field: "changeUserRole", at: Where::Tenant, op: "mutation { changeUserRole(id: \"{victim}\", role: ADMIN) { id } }", expect: admin_only },
        Rule { field: "deactivateUser", at: Where::Tenant, op: "mutation { deactivateUser(id: \"{victim}\") { id } }", expect: admin_only },
        Rule { field: "reactivateUser", at: Where::Tenant, op: "mutation { reactivateUser(id: \"{victim}\") { id } }", expect: admin_only },
        Rule { field: "createApiKey", at: Where::Tenant, op: "mutation { createApiKey(input: { name: \"k{n}\", scope: READ }) { secret } }", expect: admin_only },
        Rule { field: "revokeApiKey", at: Where::Tenant, op: "mutation { revokeApiKey(id: \"{spare_key}\") }", expect: admin_only },
        Rule {
            field: "platformLogin",
            at: Where::Api,
            op: "mutation { platformLogin(email: \"{admin_email}\", password: \"not the password\") { accessToken } }",
            expect: ["INVALID_CREDENTIALS", "INVALID_CREDENTIALS", "INVALID_CREDENTIALS", "INVALID_CREDENTIALS", "TENANT_REQUIRED", "TENANT_REQUIRED", "INVALID_CREDENTIALS", "INVALID_CREDENTIALS"],
        },
        Rule { field: "platformLogoutEverywhere", at: Where::Api, op: "mutation { platformLogoutEverywhere }", expect: platform },
        Rule { field: "deactivateTenant", at: Where::Api, op: "mutation { deactivateTenant(id: \"{spare_tenant}\") { id } }", expect: platform },
        Rule { field: "reactivateTenant", at: Where::Api, op: "mutation { reactivateTenant(id: \"{spare_tenant}\") { id } }", expect: platform },
    ]
}

/// The root fields of `type {name}` in the SDL.
fn root_fields(sdl: &str, name: &str) -> BTreeSet<String> {
    let start = sdl.find(&format!("type {name} {{")).unwrap_or_else(|| panic!("no type {name}"));
    let body = &sdl[start..];
    let body = &body[..body.find("\n}").unwrap()];
    let mut fields = BTreeSet::new();
    let mut in_doc = false;
    for line in body.lines().skip(1) {
        let line = line.trim();
        if line.starts_with("\"\"\"") {
            in_doc = !(in_doc || (line.len() > 3 && line.ends_with("\"\"\"")));
            continue;
        }
        if in_doc || line.is_empty() {
            continue;
        }
        let name = line.split(['(', ':']).next().unwrap().trim();
        fields.insert(name.to_owned());
    }
    fields
}

#[test]
fn every_root_field_of_the_schema_has_a_rule() {
    let sdl = build_schema(SchemaOptions { production: false, limits: Default::default() }).sdl();
    let mut schema_fields = root_fields(&sdl, "Query");
    schema_fields.extend(root_fields(&sdl, "Mutation"));
    let ruled: BTreeSet<String> = rules().iter().map(|r| r.field.to_owned()).collect();
    let missing: Vec<_> = schema_fields.difference(&ruled).collect();
    let stale: Vec<_> = ruled.difference(&schema_fields).collect();
    assert!(missing.is_empty(), "root fields without an authorization rule: {missing:?}");
    assert!(stale.is_empty(), "rules for fields the schema no longer has: {stale:?}");
}

/// A fresh world for one field, so what one rule changes cannot touch the
/// next: agency `acme` with an owner, an admin, a member, a victim user and
/// keys; another agency; a spare agency; a platform administrator.
struct World {
    app: TestApp,
    credentials: Vec<Option<(&'static str, String)>>,
    victim: String,
    spare_key: String,
    spare_tenant: String,
    admin_email: String,
    /// Domain rows of `acme`: ids to read and change, and spares to delete.
    ids: Vec<(&'static str, String)>,
}

async fn world(backend: Backend) -> World {
    let app = TestApp::new(backend).await;
    let owner = app.sign_up("acme").await;
    let admin = app.add_user(&owner, "acme", "adam", "ADMIN").await;
    let member = app.add_user(&owner, "acme", "mia", "MEMBER").await;
    let victim = app.add_user(&owner, "acme", "victor", "MEMBER").await;
    let (read_key, _) = app.api_key(&owner, "acme", "READ").await;
    let (rw_key, _) = app.api_key(&owner, "acme", "READ_WRITE").await;
    let (_, spare_key) = app.api_key(&owner, "acme", "READ").await;
    let other = app.sign_up("globex").await;
    let spare = app.sign_up("spare").await;
    let platform = app.platform_admin().await;
    let mut ids = Vec::new();
    for (name, kind) in [("{client}", "client"), ("{spare_client}", "client")] {
        ids.push((name, create(&app, &owner, kind, None).await));
    }
    let client = ids[0].1.clone();
    for (name, kind) in [("{project}", "project"), ("{spare_project}", "project")] {
        ids.push((name, create(&app, &owner, kind, Some(&client)).await));
    }
    let project = ids[2].1.clone();
    for (name, kind) in [("{document}", "document"), ("{spare_document}", "document")] {
        ids.push((name, create(&app, &owner, kind, Some(&project)).await));
    }
    let bearer = |t: &str| Some(("authorization", format!("Bearer {t}")));
    World {
        credentials: vec![
            None,
            bearer(&member.access),
            bearer(&admin.access),
            bearer(&owner.access),
            Some(("x-api-key", read_key)),
            bearer(&rw_key),
            bearer(&other.access),
            bearer(&platform),
        ],
        victim: victim.user_id,
        spare_key,
        spare_tenant: spare.tenant_id,
        admin_email: "nobody@aggios.test".into(),
        ids,
        app,
    }
}

/// A client, project (of `parent`) or document (of project `parent`).
async fn create(app: &TestApp, owner: &Signed, kind: &str, parent: Option<&str>) -> String {
    let op = match kind {
        "client" => "mutation { createClient(input: { name: \"Globo\" }) { id } }".to_owned(),
        "project" => format!("mutation {{ createProject(input: {{ clientId: \"{}\", name: \"Site\" }}) {{ id }} }}", parent.unwrap_or_default()),
        _ => {
            let bytes = b"%PDF-1.7\nbrief".to_vec();
            let a = app
                .gql_upload(
                    &host("acme"),
                    &owner.access,
                    "mutation($input: UploadDocumentInput!) { uploadDocument(input: $input) { id } }",
                    json!({ "input": { "projectId": parent.unwrap_or_default(), "name": "brief.pdf", "file": null } }),
                    &[FilePart { path: "variables.input.file", filename: "brief.pdf", content_type: "application/pdf", bytes: &bytes }],
                )
                .await;
            return a.body["data"]["uploadDocument"]["id"].as_str().unwrap_or_else(|| panic!("uploading: {:?}", a.body)).to_owned();
        }
    };
    let a = app.gql_as(&host("acme"), &owner.access, &op).await;
    let data = &a.body["data"];
    let id = data.as_object().and_then(|o| o.values().next()).map(|v| v["id"].clone());
    id.and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| panic!("creating a {kind}: {:?}", a.body))
}

async fn walk(backend: Backend) {
    let mut failures = Vec::new();
    for rule in rules() {
        let w = world(backend).await;
        for (n, caller) in CALLERS.iter().enumerate() {
            let op = rule
                .op
                .replace("{n}", &n.to_string())
                .replace("{victim}", &w.victim)
                .replace("{spare_key}", &w.spare_key)
                .replace("{spare_tenant}", &w.spare_tenant)
                .replace("{admin_email}", &w.admin_email);
            let op = w.ids.iter().fold(op, |op, (name, id)| op.replace(name, id));
            let host = match rule.at {
                Where::Tenant => host("acme"),
                Where::Api => API_HOST.to_owned(),
            };
            // Each caller speaks from its own (documentation-range) address,
            // so sign-in limits of one do not spill onto the next.
            let address = format!("192.0.2.{}", n + 1);
            let mut headers: Vec<(&str, &str)> = w.credentials[n].iter().map(|(k, v)| (*k, v.as_str())).collect();
            headers.push(("x-forwarded-for", &address));
            let a = w.app.gql_vars(&host, &headers, &op, json!({})).await;
            assert!(a.status < 500, "{} as {caller:?}: {} {:?}", rule.field, a.status, a.body);
            let got = match a.code() {
                None if a.body["errors"].is_null() && !a.body["data"].is_null() => OK.to_owned(),
                None => format!("no code: {}", a.body),
                Some(code) => code.to_owned(),
            };
            if got != rule.expect[n] {
                failures.push(format!("{} as {caller:?}: expected {}, got {got} ({})", rule.field, rule.expect[n], a.body));
            }
        }
    }
    assert!(failures.is_empty(), "{} cells differ:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn every_field_answers_every_kind_of_caller_as_decided_on_postgres() {
    walk(Backend::Postgres).await;
}

#[tokio::test]
async fn every_field_answers_every_kind_of_caller_as_decided_on_sqlite() {
    walk(Backend::Sqlite).await;
}
