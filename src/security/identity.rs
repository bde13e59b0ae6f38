//! Who is calling: the mTLS client certificate's subject alternative name,
//! else the bearer token in `authorization` metadata.

use std::fmt;

use http::HeaderMap;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// An authenticated caller, put into request extensions by the
/// [`AuthLayer`](super::AuthLayer) and read by
/// [`Authorizer::authorize_request`](super::Authorizer::authorize_request).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A verified client certificate, named by its first URI SAN (e.g. a
    /// SPIFFE ID), else its first DNS SAN.
    Certificate(String),
    /// A bearer token known to the policy, named by its policy `name` (the
    /// token itself is never kept).
    Token(String),
}

impl Identity {
    /// The identity the auth layer resolved for this request, if any.
    pub fn of(extensions: &http::Extensions) -> Option<&Identity> {
        extensions.get::<Identity>()
    }

    /// The identity a certificate names: its first URI SAN, else its first
    /// DNS SAN; `None` for an unparsable certificate or one without either.
    pub fn from_certificate(der: &CertificateDer<'_>) -> Option<Identity> {
        let cert = webpki::EndEntityCert::try_from(der).ok()?;
        let name = cert
            .valid_uri_names()
            .next()
            .or_else(|| cert.valid_dns_names().next())?;
        Some(Identity::Certificate(name.to_owned()))
    }

    /// The identity of the verified client certificate of this connection
    /// (tonic puts the TLS connection info into every request's extensions).
    pub fn from_peer_certificate(extensions: &http::Extensions) -> Option<Identity> {
        // The facade's own listener, else tonic's (tests serve with both).
        let certs = match extensions.get::<TlsConnectInfo<crate::listener::ConnInfo>>() {
            Some(info) => info.peer_certs()?,
            None => extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()?
                .peer_certs()?,
        };
        // The end-entity certificate comes first; the rest is its chain.
        Identity::from_certificate(certs.first()?)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Certificate(name) => write!(f, "{name}"),
            Identity::Token(name) => write!(f, "token:{name}"),
        }
    }
}

/// The `authorization` metadata was present but is not `Bearer <token>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedAuthorization;

/// The bearer token of `authorization: Bearer <token>` (scheme
/// case-insensitive), `None` without the header.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, MalformedAuthorization> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| MalformedAuthorization)?;
    let (scheme, token) = value.split_once(' ').ok_or(MalformedAuthorization)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(MalformedAuthorization);
    }
    Ok(Some(token))
}

/// SHA-256 of a bearer token, as the policy stores it.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// SHA-256 of a bearer token in hex: the `token_sha256` of a policy entry
/// (the same as `printf %s "$TOKEN" | sha256sum`).
pub fn token_sha256_hex(token: &str) -> String {
    hex::encode(token_digest(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn bearer_tokens_are_parsed_and_malformed_ones_refused() {
        assert_eq!(bearer_token(&HeaderMap::new()), Ok(None));
        assert_eq!(bearer_token(&headers("Bearer abc")), Ok(Some("abc")));
        assert_eq!(bearer_token(&headers("bearer  abc ")), Ok(Some("abc")));
        assert_eq!(
            bearer_token(&headers("Basic dXNlcjpwYXNz")),
            Err(MalformedAuthorization)
        );
        assert_eq!(
            bearer_token(&headers("Bearer")),
            Err(MalformedAuthorization)
        );
        assert_eq!(
            bearer_token(&headers("Bearer ")),
            Err(MalformedAuthorization)
        );
    }

    #[test]
    fn token_digest_is_sha256_hex() {
        assert_eq!(
            token_sha256_hex("password"),
            "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        );
    }

    #[test]
    fn identities_display_their_kind() {
        let cert = Identity::Certificate("spiffe://cluster.local/ns/x/sa/y".into());
        assert_eq!(cert.to_string(), "spiffe://cluster.local/ns/x/sa/y");
        assert_eq!(Identity::Token("ci".into()).to_string(), "token:ci");
    }

    #[test]
    fn garbage_is_no_certificate_identity() {
        let der = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert_eq!(Identity::from_certificate(&der), None);
        assert_eq!(
            Identity::from_peer_certificate(&http::Extensions::new()),
            None
        );
    }
}
