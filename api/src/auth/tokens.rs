//! Access tokens: PASETO v4.public (Ed25519), short-lived, with the key id in
//! the footer. A user token's audience is its tenant, so it is valid only on
//! that tenant's hosts; a platform administrator's audience is `platform`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use pasetors::{
    Public,
    claims::{Claims, ClaimsValidationRules},
    footer::Footer,
    public,
    token::UntrustedToken,
    version4::{PublicToken, V4},
};
use uuid::Uuid;

use super::{Role, keyring::Keyring, principal::{AdminPrincipal, UserPrincipal}};
use crate::error::{ApiError, ApiResult};

const PLATFORM_AUDIENCE: &str = "platform";
const MAX_TOKEN_LEN: usize = 4096;
const MAX_FOOTER_LEN: usize = 256;

pub fn tenant_audience(tenant: Uuid) -> String {
    format!("tenant:{tenant}")
}

fn files_audience(tenant: Uuid) -> String {
    format!("files:{tenant}")
}

/// What a verified access token says.
#[derive(Debug, Clone)]
pub enum Verified {
    User { principal: UserPrincipal, issued_us: i64 },
    Admin { principal: AdminPrincipal, issued_us: i64 },
}

/// Tokens already verified, so a client's next requests skip the Ed25519
/// check (most of a request's cost). A token is immutable, so its verdict
/// holds until it expires; revocation is checked per request elsewhere.
type Verdicts = std::sync::Mutex<HashMap<(String, Option<Uuid>), (Verified, i64)>>;

const MAX_VERDICTS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Tokens {
    keyring: Arc<Keyring>,
    issuer: String,
    ttl: Duration,
    verdicts: Arc<Verdicts>,
}

impl Tokens {
    pub fn new(keyring: Arc<Keyring>, issuer: String, ttl: Duration) -> Self {
        Self { keyring, issuer, ttl, verdicts: Arc::default() }
    }

    pub fn issue_user(&self, user: &UserPrincipal) -> ApiResult<(String, DateTime<Utc>)> {
        self.issue(&tenant_audience(user.tenant_id), &user.user_id, |c| {
            c.add_additional("tid", user.tenant_id.to_string())?;
            c.add_additional("role", user.role.as_str())?;
            c.add_additional("email", user.email.as_str())?;
            c.add_additional("sid", user.session_id.to_string())
        })
    }

    pub fn issue_admin(&self, admin: &AdminPrincipal) -> ApiResult<(String, DateTime<Utc>)> {
        self.issue(PLATFORM_AUDIENCE, &admin.admin_id, |c| {
            c.add_additional("email", admin.email.as_str())?;
            c.add_additional("kind", "platform-admin")
        })
    }

    fn issue(
        &self,
        audience: &str,
        subject: &Uuid,
        extra: impl FnOnce(&mut Claims) -> Result<(), pasetors::errors::Error>,
    ) -> ApiResult<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let build = || -> Result<(String, DateTime<Utc>), pasetors::errors::Error> {
            let mut claims = Claims::new_expires_in(&self.ttl)?;
            claims.issuer(&self.issuer)?;
            claims.audience(audience)?;
            claims.subject(&subject.to_string())?;
            claims.token_identifier(&Uuid::now_v7().to_string())?;
            // Microsecond issue time: revocation cuts compare against it.
            claims.add_additional("ius", now.timestamp_micros())?;
            extra(&mut claims)?;
            let (kid, key) = self.keyring.signing();
            let mut footer = Footer::new();
            footer.key_id(kid);
            let token = public::sign(key, &claims, Some(&footer), None)?;
            // What the token says, to the second: a client told a later
            // instant would see its token refused before it expected.
            let expires = claims
                .get_claim("exp")
                .and_then(|v| v.as_str())
                .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
                .map_or(now, |e| e.with_timezone(&Utc));
            Ok((token, expires))
        };
        build().map_err(|e| ApiError::internal(anyhow::anyhow!("signing a token: {e:?}")))
    }

    /// A short-lived grant for one file operation (a download link, a direct
    /// upload), signed with the same keys for the audience `files:{tenant}`,
    /// so a grant is never an access token nor an access token a grant.
    pub fn sign_grant(&self, tenant: Uuid, purpose: &str, ttl: Duration, data: serde_json::Value) -> ApiResult<String> {
        let build = || -> Result<String, pasetors::errors::Error> {
            let mut claims = Claims::new_expires_in(&ttl)?;
            claims.issuer(&self.issuer)?;
            claims.audience(&files_audience(tenant))?;
            claims.subject(purpose)?;
            claims.add_additional("dat", data)?;
            let (kid, key) = self.keyring.signing();
            let mut footer = Footer::new();
            footer.key_id(kid);
            public::sign(key, &claims, Some(&footer), None)
        };
        build().map_err(|e| ApiError::internal(anyhow::anyhow!("signing a file grant: {e:?}")))
    }

    /// The data of a valid grant for `purpose` on `tenant`'s files; `None`
    /// for anything altered, expired, for another purpose or tenant.
    pub fn verify_grant(&self, token: &str, tenant: Uuid, purpose: &str) -> Option<serde_json::Value> {
        let claims = self.open(token)?;
        let mut rules = ClaimsValidationRules::new();
        rules.validate_issuer_with(&self.issuer);
        rules.validate_audience_with(&files_audience(tenant));
        rules.validate_subject_with(purpose);
        rules.validate_claims(&claims).ok()?;
        claims.get_claim("dat").cloned()
    }

    /// Verifies signature, key, issuer, audience and validity times. Every
    /// failure is `UNAUTHENTICATED`, whatever the token was.
    pub fn verify(&self, token: &str, audience: Option<Uuid>) -> ApiResult<Verified> {
        self.verify_until(token, audience).map(|(verified, _)| verified)
    }

    /// [`Self::verify`], and when the token expires (seconds since the epoch).
    pub fn verify_until(&self, token: &str, audience: Option<Uuid>) -> ApiResult<(Verified, i64)> {
        let now = Utc::now().timestamp();
        let key = (token.to_owned(), audience);
        {
            let verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((verified, expires)) = verdicts.get(&key)
                && now < *expires
            {
                return Ok((verified.clone(), *expires));
            }
        }
        let (verified, expires) = self.verify_inner(token, audience).ok_or(ApiError::Unauthenticated)?;
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        if verdicts.len() >= MAX_VERDICTS {
            verdicts.retain(|_, (_, exp)| now < *exp);
            if verdicts.len() >= MAX_VERDICTS {
                verdicts.clear();
            }
        }
        verdicts.insert(key, (verified.clone(), expires));
        Ok((verified, expires))
    }

    /// Whether `token` is one of ours whose validity has run out (to tell
    /// a client why it was refused).
    pub fn is_expired(&self, token: &str) -> bool {
        let exp = self.open(token).and_then(|c| c.get_claim("exp").and_then(|v| v.as_str()).and_then(|e| DateTime::parse_from_rfc3339(e).ok()));
        exp.is_some_and(|exp| exp.timestamp() <= Utc::now().timestamp())
    }

    /// The claims of a token signed by a key of the ring; `None` for
    /// anything else. Claims are not validated here.
    fn open(&self, token: &str) -> Option<Claims> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let untrusted = UntrustedToken::<Public, V4>::try_from(token).ok()?;
        // The footer is read with serde_json rather than `Footer::parse_bytes`,
        // which compiles a regex on every call (most of a verification's
        // cost). The signature covers these exact bytes either way.
        let footer_bytes = untrusted.untrusted_footer();
        if footer_bytes.len() > MAX_FOOTER_LEN {
            return None;
        }
        let footer: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(footer_bytes).ok()?;
        let key = self.keyring.verifying(footer.get("kid")?.as_str()?)?;
        let trusted = PublicToken::verify(key, &untrusted, Some(footer_bytes), None).ok()?;
        Claims::from_string(trusted.payload()).ok()
    }

    /// The full check: signature, key, claims. Returns the verdict and the
    /// token's expiry (unix seconds).
    fn verify_inner(&self, token: &str, tenant: Option<Uuid>) -> Option<(Verified, i64)> {
        let claims = self.open(token)?;
        let audience = tenant.map_or_else(|| PLATFORM_AUDIENCE.to_owned(), tenant_audience);
        let mut rules = ClaimsValidationRules::new();
        rules.validate_issuer_with(&self.issuer);
        rules.validate_audience_with(&audience);
        rules.validate_claims(&claims).ok()?;
        let str_claim = |name: &str| claims.get_claim(name).and_then(|v| v.as_str());
        let subject = str_claim("sub")?.parse::<Uuid>().ok()?;
        let email = str_claim("email")?.to_owned();
        let issued_us = claims.get_claim("ius")?.as_i64()?;
        let expires = DateTime::parse_from_rfc3339(str_claim("exp")?).ok()?.timestamp();
        match tenant {
            Some(tenant_id) => {
                let tid = str_claim("tid")?.parse::<Uuid>().ok()?;
                if tid != tenant_id {
                    return None;
                }
                let principal = UserPrincipal {
                    user_id: subject,
                    tenant_id,
                    role: Role::parse(str_claim("role")?)?,
                    email,
                    session_id: str_claim("sid")?.parse().ok()?,
                };
                Some((Verified::User { principal, issued_us }, expires))
            }
            None => {
                (str_claim("kind")? == "platform-admin").then_some(())?;
                Some((Verified::Admin { principal: AdminPrincipal { admin_id: subject, email }, issued_us }, expires))
            }
        }
    }
}
