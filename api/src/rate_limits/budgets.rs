//! Which budgets a request is charged, and under which keys. Anonymous
//! requests are charged by client address, a user's by user and a key's by
//! key, and both of those by their agency too: one agency's traffic, however
//! many users and keys it spreads over, cannot take more than its share.
//! Signing up and signing in are charged by address whoever sends them (a
//! stale token comes along with a login). Failed sign-ins are also slowed
//! per account by `auth::throttle`; this counts volume, not failures.

use std::{net::IpAddr, time::Duration};

use uuid::Uuid;

use crate::{auth::Principal, cache, config::RateLimitSettings, request::RequestContext};

/// What a budget counts, for `RateLimit-Policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Requests,
    /// The validated complexity of queries (`graphql::limits`).
    Complexity,
}

/// A budget: its name (the policy's in the RateLimit header fields), its
/// quota per window, and what it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub name: &'static str,
    pub quota: u64,
    pub window_secs: u64,
    pub unit: Unit,
}

impl Budget {
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }
}

/// Where in a request a check is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The request itself, authenticated, before its body is read.
    Request,
    /// A query, validated: its complexity.
    Query { cost: u64 },
    /// A mutation, parsed and validated: its root fields by kind.
    Mutation { sign_ups: u64, sign_ins: u64, others: u64 },
}

/// One charge of a check: a budget, whose bucket, how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub budget: Budget,
    pub key: String,
    pub cost: u64,
}

/// Whom a request's budgets belong to.
enum Subject {
    Address,
    User { tenant: Uuid, id: Uuid },
    Key { tenant: Uuid, id: Uuid },
    Admin(Uuid),
}

fn subject(ctx: &RequestContext) -> Subject {
    if ctx.credential_refused {
        return Subject::Address;
    }
    match &ctx.principal {
        Principal::Anonymous => Subject::Address,
        Principal::User(u) => Subject::User { tenant: u.tenant_id, id: u.user_id },
        Principal::ApiKey(k) => Subject::Key { tenant: k.tenant_id, id: k.key_id },
        Principal::PlatformAdmin(a) => Subject::Admin(a.admin_id),
    }
}

/// A client address as a bucket: IPv4 whole, IPv6 by its /64, the block one
/// subscriber is usually given (an address per request is free within it).
fn address(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("{}/64", std::net::Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
        None => "unknown".into(),
    }
}

/// The same thing counted per address, user, key and agency.
struct Family {
    address: Budget,
    user: Budget,
    key: Budget,
    agency: Budget,
}

fn per_minute(name: &'static str, quota: u64, unit: Unit) -> Budget {
    Budget { name, quota, window_secs: 60, unit }
}

fn requests(s: &RateLimitSettings) -> Family {
    Family {
        address: per_minute("address-requests", s.address_requests_per_minute, Unit::Requests),
        user: per_minute("user-requests", s.user_requests_per_minute, Unit::Requests),
        key: per_minute("key-requests", s.key_requests_per_minute, Unit::Requests),
        agency: per_minute("agency-requests", s.agency_requests_per_minute, Unit::Requests),
    }
}

fn query_cost(s: &RateLimitSettings) -> Family {
    Family {
        address: per_minute("address-query-cost", s.address_query_cost_per_minute, Unit::Complexity),
        user: per_minute("user-query-cost", s.user_query_cost_per_minute, Unit::Complexity),
        key: per_minute("key-query-cost", s.key_query_cost_per_minute, Unit::Complexity),
        agency: per_minute("agency-query-cost", s.agency_query_cost_per_minute, Unit::Complexity),
    }
}

/// Anonymous mutations are signing up and in (their own budgets) or refused
/// as unauthenticated; the address's request budget bounds the rest.
fn mutations(s: &RateLimitSettings) -> Family {
    Family {
        address: per_minute("address-mutations", 0, Unit::Requests),
        user: per_minute("user-mutations", s.user_mutations_per_minute, Unit::Requests),
        key: per_minute("key-mutations", s.key_mutations_per_minute, Unit::Requests),
        agency: per_minute("agency-mutations", s.agency_mutations_per_minute, Unit::Requests),
    }
}

fn address_key(budget: &Budget, ip: Option<IpAddr>) -> String {
    cache::platform_key("rl", &format!("{}:{}", budget.name, address(ip)))
}

/// `family`'s charges of `cost` for the request's subject (and agency).
fn charge(family: Family, ctx: &RequestContext, cost: u64, out: &mut Vec<Charge>) {
    let mut add = |budget: Budget, key: String| out.push(Charge { budget, key, cost });
    match subject(ctx) {
        Subject::Address => add(family.address, address_key(&family.address, ctx.client_ip())),
        Subject::User { tenant, id } => {
            add(family.user, cache::tenant_key(tenant, "rl", &format!("{}:{id}", family.user.name)));
            add(family.agency, cache::tenant_key(tenant, "rl", family.agency.name));
        }
        Subject::Key { tenant, id } => {
            add(family.key, cache::tenant_key(tenant, "rl", &format!("{}:{id}", family.key.name)));
            add(family.agency, cache::tenant_key(tenant, "rl", family.agency.name));
        }
        // The platform's own administrators have no agency; they count as users.
        Subject::Admin(id) => add(family.user, cache::platform_key("rl", &format!("{}:admin:{id}", family.user.name))),
    }
}

/// What `stage` of the request is charged; budgets set to 0 are left out.
pub fn charges(s: &RateLimitSettings, ctx: &RequestContext, stage: Stage) -> Vec<Charge> {
    let mut out = Vec::with_capacity(3);
    match stage {
        Stage::Request => charge(requests(s), ctx, 1, &mut out),
        Stage::Query { cost } => charge(query_cost(s), ctx, cost, &mut out),
        Stage::Mutation { sign_ups, sign_ins, others } => {
            let sign_up = Budget { name: "sign-ups", quota: s.sign_ups_per_address_per_hour, window_secs: 3600, unit: Unit::Requests };
            let sign_in = per_minute("sign-ins", s.sign_ins_per_address_per_minute, Unit::Requests);
            for (budget, cost) in [(sign_up, sign_ups), (sign_in, sign_ins)] {
                if cost > 0 {
                    out.push(Charge { budget, key: address_key(&budget, ctx.client_ip()), cost });
                }
            }
            if others > 0 {
                charge(mutations(s), ctx, others, &mut out);
            }
        }
    }
    out.retain(|c| c.budget.quota > 0);
    out
}

#[cfg(test)]
mod tests {
    use super::address;

    #[test]
    fn an_ipv6_client_is_one_bucket_per_64_and_a_mapped_ipv4_is_its_ipv4() {
        let a = address("2001:db8:1:2:aaaa::1".parse().ok());
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(address("2001:db8:1:2:ffff::9".parse().ok()), a);
        assert_ne!(address("2001:db8:1:3::1".parse().ok()), a);
        assert_eq!(address("::ffff:10.0.0.1".parse().ok()), "10.0.0.1");
        assert_eq!(address(None), "unknown");
    }
}
