//! How answers are written: the media type a client accepts, and the one
//! place where an `ApiError` becomes an HTTP response.

use poem::{
    Request, Response,
    http::{HeaderValue, StatusCode, header},
};

use crate::error::ApiError;

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// The media type of a GraphQL answer (GraphQL over HTTP, stage 2 draft).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/json`: well-formed requests are answered `200` whatever
    /// their GraphQL errors, as clients written before the spec expect.
    Json,
    /// `application/graphql-response+json`: a request that could not run
    /// (parse, validation, variables) is a `4xx` with no `data` entry.
    GraphqlResponse,
}

impl Media {
    /// `application/graphql-response+json` when the client accepts it at
    /// least as much as JSON; JSON otherwise, also when `Accept` is missing
    /// or names nothing we write (the spec lets a server answer JSON then).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let (mut graphql, mut json) = (0.0_f32, 0.0_f32);
        for range in accept.unwrap_or("application/json").split(',') {
            let mut parts = range.split(';');
            let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match essence.as_str() {
                GRAPHQL_RESPONSE_JSON => graphql = graphql.max(q),
                "application/json" | "application/*" | "*/*" => json = json.max(q),
                _ => {}
            }
        }
        if graphql > 0.0 && graphql >= json { Self::GraphqlResponse } else { Self::Json }
    }

    pub fn of(req: &Request) -> Self {
        Self::negotiate(req.header(header::ACCEPT))
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json; charset=utf-8",
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        }
    }
}

/// A JSON body of the given media type.
pub fn json(media: Media, status: StatusCode, body: Vec<u8>) -> Response {
    Response::builder().status(status).header(header::CONTENT_TYPE, media.content_type()).body(body)
}

/// An error that ends a request before (or instead of) GraphQL execution:
/// its status, a GraphQL-shaped body (`errors` with the stable code, no
/// `data`), `Retry-After` when trying again later can help, and
/// `WWW-Authenticate` on `401`.
pub fn error(err: ApiError, media: Media) -> Response {
    let status = err.status();
    let retry_after = err.retry_after();
    let outcome = super::observe::Outcome { operation: None, batch: false, code: err.code().to_owned() };
    let body = serde_json::to_vec(&err.into_response_body()).unwrap_or_default();
    let mut resp = json(media, status, body);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    outcome.mark(&mut resp);
    resp
}

/// [`error`], in the media type the request accepts.
pub fn error_for(err: ApiError, req: &Request) -> Response {
    error(err, Media::of(req))
}

#[cfg(test)]
mod tests {
    use super::Media::{self, *};

    #[test]
    fn graphql_response_json_when_accepted_at_least_as_much_as_json() {
        assert_eq!(Media::negotiate(None), Json);
        assert_eq!(Media::negotiate(Some("application/json")), Json);
        assert_eq!(Media::negotiate(Some("*/*")), Json);
        assert_eq!(Media::negotiate(Some("application/graphql-response+json")), GraphqlResponse);
        // Apollo Client 4 and graphql-http's client
        assert_eq!(Media::negotiate(Some("application/graphql-response+json, application/json;q=0.9")), GraphqlResponse);
        assert_eq!(Media::negotiate(Some("application/graphql-response+json;q=0.5, application/json")), Json);
        assert_eq!(Media::negotiate(Some("application/graphql-response+json;q=0")), Json);
        assert_eq!(Media::negotiate(Some("text/html")), Json);
    }
}
