//! The tenant comes from the Host: subdomain, custom domain, or the API host
//! with `X-Tenant`; anything else is answered with a clear code, never a 500.

use crate::helpers::*;

const TENANT_QUERY: &str = "{ tenant { id name subdomain customDomain } }";

on_both_backends! {
    async fn a_subdomain_host_answers_for_its_tenant(app) {
        let acme = app.create_tenant("acme").await;
        app.create_tenant("globex").await;
        let a = app.gql("acme.aggios.test", TENANT_QUERY).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(a.body["data"]["tenant"]["id"], acme.id.to_string());
        assert_eq!(a.body["data"]["tenant"]["subdomain"], "acme");
        assert_eq!(a.body["data"]["tenant"]["name"], "Agency acme");
        let g = app.gql("GLOBEX.aggios.test:443", TENANT_QUERY).await;
        assert_eq!(g.body["data"]["tenant"]["subdomain"], "globex");
    }
}

on_both_backends! {
    async fn the_api_host_serves_the_tenant_named_by_x_tenant(app) {
        let acme = app.create_tenant("acme").await;
        let a = app.gql_with("api.aggios.test", &[("x-tenant", "acme")], TENANT_QUERY).await;
        assert_eq!(a.body["data"]["tenant"]["id"], acme.id.to_string());
    }
}

on_both_backends! {
    async fn the_api_host_without_x_tenant_has_no_tenant_but_answers(app) {
        let a = app.gql("api.aggios.test", "{ __typename }").await;
        assert_eq!(a.body["data"]["__typename"], "Query");
        let t = app.gql("api.aggios.test", TENANT_QUERY).await;
        assert_eq!(t.code(), Some("TENANT_REQUIRED"), "{:?}", t.body);
        assert!(t.body["data"].is_null());
    }
}

on_both_backends! {
    async fn a_custom_domain_answers_for_its_tenant(app) {
        let acme = app.create_tenant_with_domain("acme", "portal.acme.com").await;
        let a = app.gql("portal.acme.com", TENANT_QUERY).await;
        assert_eq!(a.body["data"]["tenant"]["id"], acme.id.to_string());
        assert_eq!(a.body["data"]["tenant"]["customDomain"], "portal.acme.com");
    }
}

on_both_backends! {
    async fn unknown_hosts_and_tenants_are_not_found_not_errors(app) {
        app.create_tenant("acme").await;
        for (host, header) in [
            ("nobody.aggios.test", None),
            ("deep.acme.aggios.test", None),
            ("unknown.example.com", None),
            ("api.aggios.test", Some("nobody")),
            ("bad host", None),
        ] {
            let headers: Vec<(&str, &str)> = header.map(|h| ("x-tenant", h)).into_iter().collect();
            let a = app.gql_with(host, &headers, TENANT_QUERY).await;
            assert_eq!(a.status, 404, "{host}: {:?}", a.body);
            assert_eq!(a.code(), Some("TENANT_NOT_FOUND"), "{host}");
            assert!(a.body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("X-Tenant")));
        }
    }
}

on_both_backends! {
    async fn an_inactive_tenant_is_refused(app) {
        let acme = app.create_tenant("acme").await;
        set_active(&app, acme.id, false).await;
        let a = app.gql("acme.aggios.test", "{ __typename }").await;
        assert_eq!(a.status, 403);
        assert_eq!(a.code(), Some("TENANT_INACTIVE"));
    }
}

on_both_backends! {
    async fn an_x_tenant_header_that_disagrees_with_the_host_is_refused(app) {
        app.create_tenant("acme").await;
        app.create_tenant("globex").await;
        let a = app.gql_with("acme.aggios.test", &[("x-tenant", "globex")], TENANT_QUERY).await;
        assert_eq!(a.status, 403);
        assert_eq!(a.code(), Some("FORBIDDEN"));
        let same = app.gql_with("acme.aggios.test", &[("x-tenant", "acme")], TENANT_QUERY).await;
        assert_eq!(same.body["data"]["tenant"]["subdomain"], "acme");
    }
}

on_both_backends! {
    async fn a_taken_or_reserved_subdomain_is_refused_with_a_clear_code(app) {
        app.create_tenant("acme").await;
        let db = app.state.db.platform();
        let dup = aggios::store::tenants::create(db, uuid::Uuid::now_v7(), aggios::store::tenants::NewTenant {
            name: "Other".into(), subdomain: "acme".into(), custom_domain: None,
        }).await;
        assert_eq!(dup.err().map(|e| e.code()), Some("CONFLICT"));
        let reserved = aggios::store::tenants::create(db, uuid::Uuid::now_v7(), aggios::store::tenants::NewTenant {
            name: "Other".into(), subdomain: "api".into(), custom_domain: None,
        }).await;
        assert_eq!(reserved.err().map(|e| e.code()), Some("BAD_USER_INPUT"));
    }
}

#[tokio::test]
async fn tenant_look_ups_are_cached_in_redis_under_the_deployment_prefix() {
    let app = TestApp::builder(Backend::Postgres).with_redis().build().await;
    app.create_tenant("acme").await;
    let a = app.gql("acme.aggios.test", TENANT_QUERY).await;
    assert_eq!(a.body["data"]["tenant"]["subdomain"], "acme");
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}:p:tenant-by-subdomain:acme", app.settings.redis.key_prefix);
    let cached: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
    assert!(cached.is_some_and(|c| c.contains("\"acme\"")), "no cached entry at {key}");
    // Forgetting the tenant removes the entry, so a change shows at once.
    let tenant = aggios::tenancy::Tenant::from(
        aggios::store::tenants::by_subdomain(app.state.db.platform(), "acme").await.unwrap().unwrap(),
    );
    app.state.tenants.forget(&tenant).await;
    let gone: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
    assert!(gone.is_none());
}

/// Flips `is_active` through the platform connection and forgets the cache.
pub async fn set_active(app: &TestApp, id: uuid::Uuid, active: bool) {
    use sea_orm::{ActiveModelTrait as _, ActiveValue::Set, EntityTrait as _};
    let model = entity::tenants::Entity::find_by_id(id).one(app.state.db.platform()).await.unwrap().unwrap();
    let tenant = aggios::tenancy::Tenant::from(model.clone());
    let mut active_model: entity::tenants::ActiveModel = model.into();
    active_model.is_active = Set(active);
    active_model.update(app.state.db.platform()).await.unwrap();
    app.state.tenants.forget(&tenant).await;
}
