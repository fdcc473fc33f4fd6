//! Every kind of bad access token is `UNAUTHENTICATED` (a GraphQL error the
//! client can act on by refreshing), never a 500:
//! tampered, expired, not yet valid, signed by an unknown key, for another
//! audience, of the wrong purpose, or garbage.

use pasetors::{
    claims::Claims,
    footer::Footer,
    keys::{AsymmetricKeyPair, AsymmetricSecretKey, Generate as _, SymmetricKey},
    local,
    paserk::Id,
    public,
    version4::V4,
};

use crate::helpers::*;

/// The app's own signing key, read from its keyring file.
fn app_key(app: &TestApp) -> AsymmetricSecretKey<V4> {
    let text = std::fs::read_to_string(app.settings.keyring_file()).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let secret = file["keys"].as_array().unwrap().last().unwrap()["secret"].as_str().unwrap().to_owned();
    AsymmetricSecretKey::<V4>::try_from(secret.as_str()).unwrap()
}

/// Claims like the app's, for `signed`, with `edit` applied.
fn claims(signed: &Signed, edit: impl FnOnce(&mut Claims)) -> Claims {
    let mut c = Claims::new().unwrap();
    c.issuer("aggios").unwrap();
    c.audience(&format!("tenant:{}", signed.tenant_id)).unwrap();
    c.subject(&signed.user_id).unwrap();
    c.add_additional("tid", signed.tenant_id.as_str()).unwrap();
    c.add_additional("role", "OWNER").unwrap();
    c.add_additional("email", signed.email.as_str()).unwrap();
    c.add_additional("sid", uuid::Uuid::now_v7().to_string()).unwrap();
    c.add_additional("ius", chrono::Utc::now().timestamp_micros()).unwrap();
    edit(&mut c);
    c
}

fn sign(key: &AsymmetricSecretKey<V4>, claims: &Claims) -> String {
    let public = pasetors::keys::AsymmetricPublicKey::<V4>::try_from(key).unwrap();
    let mut footer = Footer::new();
    footer.key_id(&Id::from(&public));
    public::sign(key, claims, Some(&footer), None).unwrap()
}

#[tokio::test]
async fn bad_access_tokens_are_unauthenticated_and_never_a_server_error() {
    let app = TestApp::new(Backend::Sqlite).await;
    let owner = app.sign_up("acme").await;
    let other = app.sign_up("globex").await;
    let key = app_key(&app);

    // The app's key and claims: accepted (so the others fail for their flaw).
    let good = sign(&key, &claims(&owner, |_| {}));
    assert_eq!(app.gql_as(&host("acme"), &good, "{ me { id } }").await.status, 200);

    let mut tampered = owner.access.clone().into_bytes();
    let i = 30;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let expired = sign(&key, &claims(&owner, |c| {
        c.expiration(&(chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339()).unwrap();
    }));
    let not_yet = sign(&key, &claims(&owner, |c| {
        c.not_before(&(chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339()).unwrap();
    }));
    let stranger = AsymmetricKeyPair::<V4>::generate().unwrap();
    let wrong_key = sign(&stranger.secret, &claims(&owner, |_| {}));
    let wrong_audience = sign(&key, &claims(&owner, |c| c.audience(&format!("tenant:{}", other.tenant_id)).unwrap()));
    let platform_audience = sign(&key, &claims(&owner, |c| c.audience("platform").unwrap()));
    let wrong_issuer = sign(&key, &claims(&owner, |c| c.issuer("someone-else").unwrap()));
    let local_key = SymmetricKey::<V4>::generate().unwrap();
    let wrong_purpose = local::encrypt(&local_key, &claims(&owner, |_| {}), None, None).unwrap();
    let no_footer = public::sign(&key, &claims(&owner, |_| {}), None, None).unwrap();

    for (what, token) in [
        ("tampered", tampered.as_str()),
        ("expired", &expired),
        ("not yet valid", &not_yet),
        ("unknown key", &wrong_key),
        ("another tenant's audience", &wrong_audience),
        ("the platform audience", &platform_audience),
        ("another issuer", &wrong_issuer),
        ("v4.local", &wrong_purpose),
        ("no key id", &no_footer),
        ("garbage", "not-a-token"),
        ("v4.public prefix only", "v4.public."),
        ("huge", &"v4.public.".repeat(2000)),
    ] {
        let a = app.gql_as(&host("acme"), token, "{ me { id } }").await;
        assert_eq!((a.status, a.code()), (200, Some("UNAUTHENTICATED")), "{what}: {:?}", a.body);
        assert!(a.body["data"].is_null(), "{what}: nothing runs as no one: {:?}", a.body);
    }
    // A malformed Authorization header too.
    let a = app.gql_with(&host("acme"), &[("authorization", "Basic abc")], "{ tenant { id } }").await;
    assert_eq!((a.status, a.code()), (200, Some("UNAUTHENTICATED")));
}

#[tokio::test]
async fn rotated_keys_keep_earlier_tokens_valid_and_sign_new_ones() {
    let app = TestApp::new(Backend::Sqlite).await;
    let owner = app.sign_up("acme").await;
    let before = aggios::auth::keyring::Keyring::load(&app.settings.keyring_file(), false).unwrap().signing_id().to_owned();
    let rotated = aggios::auth::keyring::Keyring::rotate(&app.settings.keyring_file(), 3).unwrap();
    assert_ne!(before, rotated);
    // A replica started after the rotation still accepts the old token...
    let replica = app.second_instance().await;
    assert_eq!(replica.gql_as(&host("acme"), &owner.access, "{ me { id } }").await.status, 200);
    // ...and signs new ones with the new key.
    let fresh = replica.login_ok("acme", "owner@acme.com").await;
    let footer = fresh.access.rsplit('.').next().unwrap();
    let footer = String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, footer).unwrap()).unwrap();
    assert!(footer.contains(&rotated), "{footer}");
}

#[tokio::test]
async fn production_refuses_to_start_without_a_keyring_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = aggios::config::Settings { data_dir: dir.path().to_path_buf(), ..Default::default() };
    settings.server.environment = aggios::config::Environment::Production;
    let err = aggios::state::AppState::connect(settings).await.expect_err("no keyring, no start");
    let msg = format!("{err:#}");
    assert!(msg.contains("auth.keyring_file") && msg.contains("aggios keys generate"), "{msg}");
}
