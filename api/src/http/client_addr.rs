//! The client address of a request, decided once for every route: the peer,
//! or behind a trusted proxy (`server.trusted_proxies`) the address that
//! proxy put in `X-Forwarded-For`. Throttles and session records read it
//! from the request extensions; nothing else parses the header.

use std::{net::IpAddr, sync::Arc};

use poem::{Endpoint, Request, Result};

use crate::net::{Cidr, client_address};

/// The request's client address, in the request extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// A request without a network peer (served in process, as tests and tools
/// do, or over a Unix socket) comes from this host itself.
const IN_PROCESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

pub async fn with_client_addr<E: Endpoint>(next: E, trusted: Arc<[Cidr]>, mut req: Request) -> Result<E::Output> {
    let peer = Some(req.remote_addr().as_socket_addr().map_or(IN_PROCESS, |a| a.ip()));
    let addr = client_address(peer, req.header("x-forwarded-for"), &trusted);
    req.extensions_mut().insert(ClientAddr(addr));
    next.call(req).await
}

impl ClientAddr {
    pub fn of(req: &Request) -> Option<IpAddr> {
        req.extensions().get::<ClientAddr>().and_then(|c| c.0)
    }
}
