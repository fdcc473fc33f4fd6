//! Findings of the abuse trial on files, each made impossible and proven
//! against PostgreSQL (with S3 where storage matters) and the SQLite and
//! local-files default.

use serde_json::{Value, json};

use crate::{
    files::{World, pdf, world},
    helpers::*,
};

const GRANT: &str =
    "mutation($i: RequestDocumentUploadInput!) { requestDocumentUpload(input: $i) { url headers { name value } uploadToken } }";

impl World {
    /// A direct-upload grant for a new document of the project: the answer.
    async fn grant(&self, name: &str, content_type: &str, size: usize) -> Answer {
        let input = json!({ "projectId": self.project, "name": name, "contentType": content_type, "sizeBytes": size });
        self.app.gql_as_vars(&self.host, &self.owner.access, GRANT, json!({ "i": input })).await
    }
}

// Finding 16: names with bidirectional overrides, content types with CR/LF.

fn refused_field(a: &Answer) -> (Option<&str>, Option<&str>) {
    (a.code(), a.body["errors"][0]["extensions"]["field"].as_str())
}

on_both_backends!(
    async fn names_refuse_invisible_format_characters_and_content_types_are_checked_whole(app) {
        let spoof = "\u{202e}fdp.exe";
        let sign_up = app
            .gql_vars(
                API_HOST,
                &[],
                "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
                json!({ "i": { "agencyName": format!("Acme{spoof}"), "subdomain": "spoof", "email": "o@spoof.com",
                                "password": PASSWORD, "firstName": "O", "lastName": "N" } }),
            )
            .await;
        assert_eq!(refused_field(&sign_up), (Some("BAD_USER_INPUT"), Some("agencyName")), "{:?}", sign_up.body);

        let w = world(app, "names16").await;
        let as_owner = async |op: &str, vars: Value| w.app.gql_as_vars(&w.host, &w.owner.access, op, vars).await;
        let cases: Vec<(&str, Value, &str)> = vec![
            ("mutation($n: String!) { createClient(input: { name: $n }) { id } }", json!({ "n": spoof }), "name"),
            (
                "mutation($p: ID!, $n: String!) { createProject(input: { clientId: $p, name: $n }) { id } }",
                json!({ "p": "00000000-0000-7000-8000-000000000000", "n": "Site\u{200b}" }),
                "name",
            ),
            (
                "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
                json!({ "i": { "email": "x@names16.com", "password": PASSWORD, "firstName": "Ana", "lastName": "\u{2066}Silva\u{2069}", "role": "MEMBER" } }),
                "lastName",
            ),
            (
                "mutation($id: ID!, $n: String!) { updateUser(id: $id, input: { firstName: $n }) { id } }",
                json!({ "id": w.owner.user_id, "n": "\u{feff}Olga" }),
                "firstName",
            ),
            ("mutation($n: String!) { createApiKey(input: { name: $n, scope: READ }) { secret } }", json!({ "n": "ci\u{2060}" }), "name"),
        ];
        for (op, vars, field) in cases {
            let a = as_owner(op, vars).await;
            assert_eq!(refused_field(&a), (Some("BAD_USER_INPUT"), Some(field)), "{op}: {:?}", a.body);
        }

        // A document's name, given or taken from the file, and renamed.
        let named = w.upload(Some(spoof), "contract.pdf", "application/pdf", &pdf(100)).await;
        assert_eq!(refused_field(&named), (Some("BAD_USER_INPUT"), Some("name")), "{:?}", named.body);
        let from_file = w.upload(None, spoof, "application/pdf", &pdf(100)).await;
        assert_eq!(refused_field(&from_file), (Some("BAD_USER_INPUT"), Some("name")), "{:?}", from_file.body);
        assert!(w.stored_keys().await.is_empty(), "refused uploads leave no bytes");
        let doc = w.upload_ok("application/pdf", &pdf(100)).await;
        let rename = as_owner("mutation($id: ID!, $n: String!) { updateDocument(id: $id, input: { name: $n }) { id } }", json!({ "id": doc["id"], "n": spoof })).await;
        assert_eq!(refused_field(&rename), (Some("BAD_USER_INPUT"), Some("name")), "{:?}", rename.body);

        // The whole content type is checked, so nothing reaches a grant's headers.
        for bad in ["application/pdf\r\nx-amz-acl: public-read", "application/pdf; a=\"b\r\nc\"", "application/pdf; x", "application/pdf junk"] {
            let a = w.grant("c.pdf", bad, 100).await;
            assert_eq!(refused_field(&a), (Some("BAD_USER_INPUT"), Some("contentType")), "{bad:?}: {:?}", a.body);
        }
        let fine = w.grant("c.pdf", "Application/PDF; Version=\"1.7\"", 100).await;
        let headers = &fine.body["data"]["requestDocumentUpload"]["headers"];
        assert_eq!(headers[0], json!({ "name": "content-type", "value": "application/pdf; version=\"1.7\"" }), "{:?}", fine.body);
    }
);
