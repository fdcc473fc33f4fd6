//! Sign-up, login, sessions, password changes and user management.

use serde_json::json;

use crate::helpers::*;

const ME: &str = "{ me { id email role } }";
/// A read of the agency's data that any API key may make.
const CLIENTS: &str = "{ clients { edges { node { id } } } }";

on_both_backends! {
    async fn sign_up_creates_an_agency_and_its_owner_signed_in(app) {
        let owner = app.sign_up("acme").await;
        let me = app.gql_as(&host("acme"), &owner.access, ME).await;
        assert_eq!(me.body["data"]["me"]["email"], "owner@acme.com");
        assert_eq!(me.body["data"]["me"]["role"], "OWNER");
        // Sign-up is for the API host only.
        let a = app.gql(&host("acme"), "mutation { signUp(input: { agencyName: \"X\", subdomain: \"xyz\", email: \"a@b.co\", password: \"tundra velvet orbit 42\", firstName: \"A\", lastName: \"B\" }) { accessToken } }").await;
        assert_eq!(a.code(), Some("FORBIDDEN"));
    }
}

#[tokio::test]
async fn weak_passwords_and_bad_emails_are_refused_naming_the_field() {
    let app = TestApp::new(Backend::Sqlite).await;
    for (password, email, field) in [
        ("password", "a@acme.com", "password"),
        ("12345678", "a@acme.com", "password"),
        ("short", "a@acme.com", "password"),
        ("acmeagency1", "a@acme.com", "password"),
        ("tundra velvet orbit 42", "not-an-email", "email"),
    ] {
        let a = app
            .gql_vars(API_HOST, &[], "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
                json!({ "i": { "agencyName": "Acme Agency", "subdomain": "acme", "email": email, "password": password, "firstName": "A", "lastName": "B" } }))
            .await;
        assert_eq!(a.code(), Some("BAD_USER_INPUT"), "{password}: {:?}", a.body);
        assert_eq!(a.body["errors"][0]["extensions"]["field"], field);
    }
    // Nothing was created by the refused attempts.
    assert!(aggios::store::tenants::by_subdomain(app.state.db.platform(), "acme").await.unwrap().is_none());
}

on_both_backends! {
    async fn login_fails_alike_for_unknown_email_wrong_password_inactive_user_and_inactive_tenant(app) {
        let owner = app.sign_up("acme").await;
        let member = app.add_user(&owner, "acme", "mia", "MEMBER").await;
        let other = app.sign_up("globex").await;
        app.gql_as(&host("acme"), &owner.access, &format!("mutation {{ deactivateUser(id: \"{}\") {{ id }} }}", member.user_id)).await;
        let admin = app.platform_admin().await;
        let d = app.gql_as(API_HOST, &admin, &format!("mutation {{ deactivateTenant(id: \"{}\") {{ isActive }} }}", other.tenant_id)).await;
        assert_eq!(d.body["data"]["deactivateTenant"]["isActive"], false);

        let mut messages = std::collections::BTreeSet::new();
        for (n, (email, password)) in [
            ("nobody@acme.com", PASSWORD),
            ("owner@acme.com", "wrong horse battery staple"),
            ("mia@acme.com", PASSWORD),
            ("owner@globex.com", PASSWORD),
        ]
        .into_iter()
        .enumerate()
        {
            let before = app.state.auth.passwords.verifications();
            let ip = format!("192.0.2.{}", 50 + n);
            let a = app
                .gql_vars(API_HOST, &[("x-forwarded-for", &ip)], "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
                    json!({ "i": { "email": email, "password": password } }))
                .await;
            assert_eq!(a.code(), Some("INVALID_CREDENTIALS"), "{email}: {:?}", a.body);
            messages.insert(a.body["errors"][0]["message"].as_str().unwrap().to_owned());
            // Each path pays for exactly one password hash: the same work,
            // so the same time, whatever the account's state.
            assert_eq!(app.state.auth.passwords.verifications() - before, 1, "{email}");
        }
        assert_eq!(messages.len(), 1, "{messages:?}");
    }
}

on_both_backends! {
    async fn the_api_host_finds_the_agency_by_email_and_asks_when_there_are_several(app) {
        let acme = app.sign_up("acme").await;
        let login = |agency: Option<&str>| {
            let vars = json!({ "i": { "email": "owner@acme.com", "password": PASSWORD, "agency": agency } });
            app.gql_vars(API_HOST, &[], "mutation($i: LoginInput!) { login(input: $i) { tenant { subdomain } } }", vars)
        };
        assert_eq!(login(None).await.body["data"]["login"]["tenant"]["subdomain"], "acme");
        // The same person, same password, in a second agency.
        let globex = app.sign_up("globex").await;
        app.gql_as_vars(&host("globex"), &globex.access, "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
            json!({ "i": { "email": "owner@acme.com", "password": PASSWORD, "firstName": "O", "lastName": "W", "role": "MEMBER" } })).await;
        assert_eq!(login(None).await.code(), Some("CONFLICT"));
        assert_eq!(login(Some("globex")).await.body["data"]["login"]["tenant"]["subdomain"], "globex");
        let _ = acme;
    }
}

#[tokio::test]
async fn repeated_failures_are_refused_for_that_address_but_the_owner_still_signs_in_from_theirs() {
    let app = TestApp::new(Backend::Postgres).await;
    app.sign_up("acme").await;
    let acme = host("acme");
    let attempt = async |ip: &str, password: &str| {
        app.gql_vars(&acme, &[("x-forwarded-for", ip)], "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
            json!({ "i": { "email": "owner@acme.com", "password": password } }))
            .await
    };
    for _ in 0..5 {
        assert_eq!(attempt("192.0.2.66", "guess guess guess").await.code(), Some("INVALID_CREDENTIALS"));
    }
    let refused = attempt("192.0.2.66", PASSWORD).await;
    assert_eq!(refused.code(), Some("RATE_LIMITED"), "{:?}", refused.body);
    assert!(refused.body["errors"][0]["extensions"]["retryAfter"].as_u64().is_some());
    let owner = attempt("192.0.2.77", PASSWORD).await;
    assert!(owner.body["data"]["login"]["accessToken"].is_string(), "the owner is locked out: {:?}", owner.body);
}

const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";

on_both_backends! {
    async fn refresh_rotates_and_a_reused_token_revokes_the_whole_session(app) {
        let owner = app.sign_up("acme").await;
        let first = app.gql_vars(&host("acme"), &[], REFRESH, json!({ "t": owner.refresh })).await;
        let second_refresh = first.body["data"]["refreshSession"]["refreshToken"].as_str().unwrap().to_owned();
        let second_access = first.body["data"]["refreshSession"]["accessToken"].as_str().unwrap().to_owned();
        assert_ne!(second_refresh, owner.refresh);
        assert_eq!(app.gql_as(&host("acme"), &second_access, ME).await.body["data"]["me"]["role"], "OWNER");

        // The spent token again: refused, and the whole family with it.
        assert_eq!(app.gql_vars(&host("acme"), &[], REFRESH, json!({ "t": owner.refresh })).await.code(), Some("UNAUTHENTICATED"));
        assert_eq!(app.gql_vars(&host("acme"), &[], REFRESH, json!({ "t": second_refresh })).await.code(), Some("UNAUTHENTICATED"));
        let me = app.gql_as(&host("acme"), &second_access, ME).await;
        assert_eq!((me.status, me.code()), (200, Some("UNAUTHENTICATED")));
        // Another session of the same user is untouched.
        let other = app.login_ok("acme", "owner@acme.com").await;
        assert_eq!(app.gql_as(&host("acme"), &other.access, ME).await.status, 200);
    }
}

on_both_backends! {
    async fn logout_revoke_session_and_logout_everywhere_end_access_at_once(app) {
        let owner = app.sign_up("acme").await;
        let laptop = app.login_ok("acme", "owner@acme.com").await;
        let phone = app.login_ok("acme", "owner@acme.com").await;
        let sessions = app.gql_as(&host("acme"), &laptop.access, "{ mySessions { id current } }").await;
        assert_eq!(sessions.body["data"]["mySessions"].as_array().unwrap().len(), 3);

        assert_eq!(app.gql_as(&host("acme"), &owner.access, "mutation { logout }").await.body["data"]["logout"], true);
        assert_eq!(app.gql_as(&host("acme"), &owner.access, ME).await.code(), Some("UNAUTHENTICATED"));
        assert_eq!(app.gql_vars(&host("acme"), &[], REFRESH, json!({ "t": owner.refresh })).await.code(), Some("UNAUTHENTICATED"));

        // Revoke the phone's session from the laptop.
        let list = app.gql_as(&host("acme"), &laptop.access, "{ mySessions { id current } }").await;
        let phone_session = list.body["data"]["mySessions"].as_array().unwrap().iter()
            .find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
        let r = app.gql_as(&host("acme"), &laptop.access, &format!("mutation {{ revokeSession(id: \"{phone_session}\") }}")).await;
        assert_eq!(r.body["data"]["revokeSession"], true, "{:?}", r.body);
        assert_eq!(app.gql_as(&host("acme"), &phone.access, ME).await.code(), Some("UNAUTHENTICATED"));
        assert_eq!(app.gql_as(&host("acme"), &laptop.access, ME).await.status, 200);

        let again = app.login_ok("acme", "owner@acme.com").await;
        let n = app.gql_as(&host("acme"), &laptop.access, "mutation { logoutEverywhere }").await;
        assert_eq!(n.body["data"]["logoutEverywhere"], 2);
        for token in [&laptop.access, &again.access] {
            assert_eq!(app.gql_as(&host("acme"), token, ME).await.code(), Some("UNAUTHENTICATED"));
        }
    }
}

on_both_backends! {
    async fn changing_the_password_ends_every_other_session(app) {
        let owner = app.sign_up("acme").await;
        let other = app.login_ok("acme", "owner@acme.com").await;
        let changed = app
            .gql_as_vars(&host("acme"), &owner.access,
                &format!("mutation($i: ChangePasswordInput!) {{ changePassword(input: $i) {{ {PAYLOAD} }} }}"),
                json!({ "i": { "currentPassword": PASSWORD, "newPassword": "lunar teapot garden 7" } }))
            .await;
        let fresh = changed.body["data"]["changePassword"]["accessToken"].as_str().unwrap_or_else(|| panic!("{:?}", changed.body)).to_owned();
        assert_eq!(app.gql_as(&host("acme"), &other.access, ME).await.code(), Some("UNAUTHENTICATED"));
        assert_eq!(app.gql_as(&host("acme"), &owner.access, ME).await.code(), Some("UNAUTHENTICATED"));
        assert_eq!(app.gql_as(&host("acme"), &fresh, ME).await.status, 200);
        assert_eq!(app.login("acme", "owner@acme.com", PASSWORD).await.code(), Some("INVALID_CREDENTIALS"));
        assert!(app.login("acme", "owner@acme.com", "lunar teapot garden 7").await.body["data"]["login"].is_object());
    }
}

on_both_backends! {
    async fn the_last_owner_stays_and_only_owners_touch_owners(app) {
        let owner = app.sign_up("acme").await;
        let admin = app.add_user(&owner, "acme", "adam", "ADMIN").await;
        let h = host("acme");
        let demote_self = format!("mutation {{ changeUserRole(id: \"{}\", role: ADMIN) {{ role }} }}", owner.user_id);
        assert_eq!(app.gql_as(&h, &owner.access, &demote_self).await.code(), Some("CONFLICT"));
        let deactivate_self = format!("mutation {{ deactivateUser(id: \"{}\") {{ id }} }}", owner.user_id);
        assert_eq!(app.gql_as(&h, &owner.access, &deactivate_self).await.code(), Some("CONFLICT"));
        // Admins cannot touch owners, nor make one.
        assert_eq!(app.gql_as(&h, &admin.access, &deactivate_self).await.code(), Some("FORBIDDEN"));
        let promote = format!("mutation {{ changeUserRole(id: \"{}\", role: OWNER) {{ role }} }}", admin.user_id);
        assert_eq!(app.gql_as(&h, &admin.access, &promote).await.code(), Some("FORBIDDEN"));
        // With a second owner, the first may step down.
        assert_eq!(app.gql_as(&h, &owner.access, &promote).await.body["data"]["changeUserRole"]["role"], "OWNER");
        let stepped = app.gql_as(&h, &owner.access, &demote_self).await;
        assert_eq!(stepped.body["data"]["changeUserRole"]["role"], "ADMIN", "{:?}", stepped.body);
        // The role is in the token: the old one no longer works.
        assert_eq!(app.gql_as(&h, &owner.access, ME).await.code(), Some("UNAUTHENTICATED"));
    }
}

#[tokio::test]
async fn deactivation_ends_access_on_the_very_next_request_on_every_instance() {
    let one = TestApp::builder(Backend::Postgres).with_redis().build().await;
    let two = one.second_instance().await;
    let owner = one.sign_up("acme").await;
    let member = one.add_user(&owner, "acme", "mia", "MEMBER").await;
    let h = host("acme");
    assert_eq!(two.gql_as(&h, &member.access, ME).await.status, 200);

    // Deactivated through instance one, refused by instance two at once.
    one.gql_as(&h, &owner.access, &format!("mutation {{ deactivateUser(id: \"{}\") {{ id }} }}", member.user_id)).await;
    assert_eq!(two.gql_as(&h, &member.access, ME).await.code(), Some("UNAUTHENTICATED"));
    assert_eq!(two.gql_vars(&h, &[], REFRESH, json!({ "t": member.refresh })).await.code(), Some("UNAUTHENTICATED"));

    // Logout everywhere on two, refused on one.
    let second = one.login_ok("acme", "owner@acme.com").await;
    two.gql_as(&h, &second.access, "mutation { logoutEverywhere }").await;
    assert_eq!(one.gql_as(&h, &owner.access, ME).await.code(), Some("UNAUTHENTICATED"));

    // A tenant deactivated through two is refused by one on the next request.
    let fresh = one.login_ok("acme", "owner@acme.com").await;
    assert_eq!(one.gql_as(&h, &fresh.access, ME).await.status, 200);
    let admin = two.platform_admin().await;
    two.gql_as(API_HOST, &admin, &format!("mutation {{ deactivateTenant(id: \"{}\") {{ id }} }}", owner.tenant_id)).await;
    // Instance one hears of it through Redis pub/sub: the ended access and
    // the tenant's change are two messages, and its very next request may
    // run before it has read the second. Every answer meanwhile is a
    // refusal; TENANT_INACTIVE follows within a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
    let refused = loop {
        let a = one.gql_as(&h, &fresh.access, ME).await;
        assert!(matches!(a.code(), Some("UNAUTHENTICATED" | "TENANT_INACTIVE")) && a.body["data"]["me"].is_null(), "a deactivated agency's token was served: {:?}", a.body);
        if a.code() == Some("TENANT_INACTIVE") || std::time::Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!((refused.status, refused.code()), (403, Some("TENANT_INACTIVE")));
    two.gql_as(API_HOST, &admin, &format!("mutation {{ reactivateTenant(id: \"{}\") {{ id }} }}", owner.tenant_id)).await;
    // Reactivation does not revive the sessions the deactivation ended.
    assert_eq!(one.gql_as(&h, &fresh.access, ME).await.code(), Some("UNAUTHENTICATED"));
    assert_eq!(one.gql_vars(&h, &[], REFRESH, json!({ "t": fresh.refresh })).await.code(), Some("UNAUTHENTICATED"));
    let again = one.login_ok("acme", "owner@acme.com").await;
    assert_eq!(two.gql_as(&h, &again.access, ME).await.status, 200);
}

on_both_backends! {
    async fn another_tenants_ids_tokens_and_keys_do_not_work_here(app) {
        let a = app.sign_up("acme").await;
        let b = app.sign_up("globex").await;
        let b_member = app.add_user(&b, "globex", "bo", "MEMBER").await;
        let (b_key, b_key_id) = app.api_key(&b, "globex", "READ_WRITE").await;
        let (a_key, _) = app.api_key(&a, "acme", "READ").await;
        let h = host("acme");
        for op in [
            format!("{{ user(id: \"{}\") {{ id }} }}", b_member.user_id),
            format!("mutation {{ updateUser(id: \"{}\", input: {{ firstName: \"X\" }}) {{ id }} }}", b_member.user_id),
            format!("mutation {{ deactivateUser(id: \"{}\") {{ id }} }}", b_member.user_id),
            format!("mutation {{ revokeApiKey(id: \"{b_key_id}\") }}"),
            "{ user(id: \"not-a-uuid\") { id } }".to_owned(),
        ] {
            let r = app.gql_as(&h, &a.access, &op).await;
            assert_eq!(r.code(), Some("NOT_FOUND"), "{op}: {:?}", r.body);
        }
        // B's member and key are untouched.
        assert_eq!(app.gql_as(&host("globex"), &b_member.access, ME).await.status, 200);
        assert!(app.gql_as(&host("globex"), &b_key, CLIENTS).await.body["errors"].is_null());
        // A's credentials on B's host, and with X-Tenant naming B.
        assert_eq!(app.gql_as(&host("globex"), &a.access, "{ tenant { id } }").await.code(), Some("UNAUTHENTICATED"));
        assert_eq!(app.gql_with(&host("globex"), &[("x-api-key", &a_key)], "{ tenant { id } }").await.code(), Some("UNAUTHENTICATED"));
        assert_eq!(app.gql_with(API_HOST, &[("x-api-key", &a_key), ("x-tenant", "globex")], "{ tenant { id } }").await.code(), Some("UNAUTHENTICATED"));
        assert!(app.gql_with(API_HOST, &[("x-api-key", &a_key), ("x-tenant", "acme")], CLIENTS).await.body["errors"].is_null());
    }
}

on_both_backends! {
    async fn api_keys_work_until_revoked_and_their_secret_is_shown_once(app) {
        let owner = app.sign_up("acme").await;
        let (key, id) = app.api_key(&owner, "acme", "READ").await;
        let h = host("acme");
        assert!(app.gql_as(&h, &key, CLIENTS).await.body["data"]["clients"]["edges"].is_array());
        assert!(app.gql_with(&h, &[("x-api-key", &key)], CLIENTS).await.body["errors"].is_null());
        assert!(app.key_last_used(&owner, "acme", &id).await.is_some(), "last use recorded");
        let listed = app.gql_as(&h, &owner.access, "{ apiKeys { id prefix lastUsedAt revokedAt } }").await;
        let entry = &listed.body["data"]["apiKeys"][0];
        assert!(key.contains(entry["prefix"].as_str().unwrap()));
        assert!(!listed.body.to_string().contains(key.rsplit('_').next().unwrap()), "the secret is never shown again");
        // A key and a token together are ambiguous: refused.
        let both = app.gql_with(&h, &[("x-api-key", &key), ("authorization", &format!("Bearer {}", owner.access))], "{ tenant { id } }").await;
        assert_eq!(both.code(), Some("UNAUTHENTICATED"));

        app.gql_as(&h, &owner.access, &format!("mutation {{ revokeApiKey(id: \"{id}\") }}")).await;
        assert_eq!(app.gql_as(&h, &key, CLIENTS).await.code(), Some("UNAUTHENTICATED"));
        // A key that expires: refused once expired.
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
        let a = app.gql_as_vars(&h, &owner.access, "mutation($at: DateTime) { createApiKey(input: { name: \"short\", scope: READ, expiresAt: $at }) { secret } }", json!({ "at": soon })).await;
        let short = a.body["data"]["createApiKey"]["secret"].as_str().unwrap().to_owned();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(app.gql_as(&h, &short, CLIENTS).await.code(), Some("UNAUTHENTICATED"));
    }
}

on_both_backends! {
    async fn platform_administrators_list_and_deactivate_agencies(app) {
        let acme = app.sign_up("acme").await;
        let admin = app.platform_admin().await;
        let list = app.gql_as(API_HOST, &admin, "{ platformTenants { subdomain isActive } }").await;
        assert_eq!(list.body["data"]["platformTenants"][0]["subdomain"], "acme");
        app.gql_as(API_HOST, &admin, &format!("mutation {{ deactivateTenant(id: \"{}\") {{ id }} }}", acme.tenant_id)).await;
        assert_eq!(app.gql(&host("acme"), "{ tenant { id } }").await.code(), Some("TENANT_INACTIVE"));
        app.gql_as(API_HOST, &admin, &format!("mutation {{ reactivateTenant(id: \"{}\") {{ id }} }}", acme.tenant_id)).await;
        assert_eq!(app.gql(&host("acme"), "{ tenant { id } }").await.status, 200);
        assert_eq!(app.gql_as(&host("acme"), &acme.access, ME).await.code(), Some("UNAUTHENTICATED"), "sessions ended with the deactivation");
        // An administrator's token means nothing on a tenant's host.
        assert_eq!(app.gql_as(&host("acme"), &admin, "{ tenant { id } }").await.code(), Some("UNAUTHENTICATED"));
    }
}

on_both_backends! {
    async fn sign_ins_and_account_changes_are_in_the_audit_trail(app) {
        let owner = app.sign_up("acme").await;
        let member = app.add_user(&owner, "acme", "mia", "MEMBER").await;
        assert_eq!(app.login("acme", "mia@acme.com", "wrong horse battery staple").await.code(), Some("INVALID_CREDENTIALS"));
        // A failed sign-in is audited after its answer (its cost must not
        // tell whether the account exists): wait for it.
        let trail = "{ auditEvents(first: 100) { edges { node { action } } } }";
        for _ in 0..50 {
            if app.gql_as(&host("acme"), &owner.access, trail).await.body.to_string().contains("auth.login_failed") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        app.gql_as(&host("acme"), &owner.access, &format!("mutation {{ deactivateUser(id: \"{}\") {{ id }} }}", member.user_id)).await;
        app.api_key(&owner, "acme", "READ").await;
        app.gql_as(&host("acme"), &owner.access, "mutation { logout }").await;
        let fresh = app.login_ok("acme", "owner@acme.com").await;
        let events = app.gql_as(&host("acme"), &fresh.access, "{ auditEvents(first: 100) { edges { node { action targetId actorUserId } } } }").await;
        let actions: Vec<String> = events.body["data"]["auditEvents"]["edges"].as_array().unwrap_or_else(|| panic!("{:?}", events.body))
            .iter().map(|e| e["node"]["action"].as_str().unwrap().to_owned()).collect();
        assert_eq!(actions, [
            "tenant.sign_up", "user.create", "auth.login", "auth.login_failed",
            "user.deactivate", "api_key.create", "auth.logout", "auth.login",
        ], "{actions:?}");
        let failed = &events.body["data"]["auditEvents"]["edges"][3]["node"];
        assert_eq!(failed["targetId"], member.user_id.as_str());
        assert!(failed["actorUserId"].is_null());
    }
}
