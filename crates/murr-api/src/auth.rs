//! Bearer tokens and their scopes: who may read, write, or change tables. Both front-ends check
//! a request's `authorization` header (an HTTP header, or gRPC metadata) against one [`Auth`].
//!
//! Tokens are kept as SHA-256 digests only, and a presented token is compared with every digest
//! in constant time, so neither the configuration in memory nor the time an answer takes tells
//! anything about a token. No message here contains a token.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Fetch, list tables, read schemas.
    Read,
    /// Write rows.
    Write,
    /// Create, drop and alter tables; compact.
    Admin,
}

impl Scope {
    /// The scope's name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A token's SHA-256 digest.
pub type TokenDigest = [u8; 32];

/// The SHA-256 digest of `token`, as the configuration's `token_sha256` holds it.
pub fn digest(token: &[u8]) -> TokenDigest {
    Sha256::digest(token).into()
}

/// `digest` as 64 lower-case hex digits.
pub fn digest_hex(digest: &TokenDigest) -> String {
    use fmt::Write;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Reads 64 hex digits (either case) as a digest.
///
/// # Errors
/// A message saying what is wrong with the text (it is a digest, not a secret, so the message
/// may quote its length but never its content).
pub fn parse_digest_hex(text: &str) -> Result<TokenDigest, String> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "a SHA-256 digest is 64 hex digits; got {} characters{}",
            text.len(),
            if text.bytes().all(|b| b.is_ascii_hexdigit()) {
                ""
            } else {
                " that are not all hex digits"
            }
        ));
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|e| format!("a SHA-256 digest: {e}"))?;
    }
    Ok(out)
}

/// One configured token: a name for the logs, the token's digest, its scopes.
#[derive(Clone)]
struct Entry {
    name: Arc<str>,
    digest: TokenDigest,
    scopes: u8,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The tokens a server accepts. With none, the server is open: every request is allowed.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tokens: Vec<Entry>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No `authorization` header (HTTP 401, gRPC Unauthenticated).
    Missing,
    /// A header that is not `Bearer <token>` (401).
    Malformed,
    /// A token that is not configured (401).
    Unknown,
    /// A known token without the scope the request needs (HTTP 403, gRPC PermissionDenied).
    Scope {
        /// The token's name in the configuration.
        name: Arc<str>,
        /// The scope the request needs.
        need: Scope,
    },
}

impl Denied {
    /// Whether the caller is known but may not do this (403), rather than unknown (401).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Denied::Scope { .. })
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Missing => f.write_str(
                "authentication required: send the header `authorization: Bearer <token>`",
            ),
            Denied::Malformed => f.write_str("the authorization header is not `Bearer <token>`"),
            Denied::Unknown => f.write_str("the bearer token is not valid"),
            Denied::Scope { name, need } => write!(
                f,
                "the token {name:?} lacks the scope {need:?} that this request needs",
                need = need.name()
            ),
        }
    }
}

impl std::error::Error for Denied {}

impl Auth {
    /// No tokens: every request is allowed.
    pub fn open() -> Self {
        Auth::default()
    }

    /// Whether every request is allowed (no token is configured).
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token is configured (the same as [`Auth::is_open`]).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Accepts the token whose digest is `digest`, named `name`, for `scopes`.
    ///
    /// # Errors
    /// When `name` is empty or taken, `scopes` is empty, or another token has the same digest
    /// (two names for one secret would make the logs ambiguous).
    pub fn add(&mut self, name: &str, digest: TokenDigest, scopes: &[Scope]) -> Result<(), String> {
        if name.is_empty() {
            return Err("a token needs a name (it names the caller in logs)".to_owned());
        }
        if self.tokens.iter().any(|t| &*t.name == name) {
            return Err(format!("two tokens are named {name:?}"));
        }
        if scopes.is_empty() {
            return Err(format!(
                "token {name:?} has no scopes (give it some of read, write, admin)"
            ));
        }
        if let Some(other) = self.tokens.iter().find(|t| t.digest == digest) {
            return Err(format!(
                "tokens {:?} and {name:?} are the same token",
                other.name
            ));
        }
        self.tokens.push(Entry {
            name: name.into(),
            digest,
            scopes: scopes.iter().fold(0, |s, x| s | x.bit()),
        });
        Ok(())
    }

    /// Checks a request's `authorization` header value against the tokens, for a request that
    /// needs `need`. Open: always allowed (`Ok(None)`); otherwise the token's name.
    ///
    /// # Errors
    /// Why the request is refused.
    pub fn check(&self, header: Option<&[u8]>, need: Scope) -> Result<Option<Arc<str>>, Denied> {
        if self.is_open() {
            return Ok(None);
        }
        let header = header.ok_or(Denied::Missing)?;
        let token = bearer(header).ok_or(Denied::Malformed)?;
        let presented = digest(token);
        // Every entry is compared, whatever matched before: the time taken does not depend on
        // which token (if any) matched.
        let mut found: Option<&Entry> = None;
        for t in &self.tokens {
            if bool::from(t.digest.ct_eq(&presented)) {
                found = Some(t);
            }
        }
        let t = found.ok_or(Denied::Unknown)?;
        if t.scopes & need.bit() == 0 {
            return Err(Denied::Scope {
                name: Arc::clone(&t.name),
                need,
            });
        }
        Ok(Some(Arc::clone(&t.name)))
    }
}

/// The tokens both front-ends check, shared, and replaced whole when the configuration is read
/// again (SIGHUP): a request sees the old set or the new one.
#[derive(Debug, Clone)]
pub struct AuthHandle(Arc<arc_swap::ArcSwap<Auth>>);

impl AuthHandle {
    /// A handle on `auth`.
    pub fn new(auth: Auth) -> Self {
        AuthHandle(Arc::new(arc_swap::ArcSwap::from_pointee(auth)))
    }

    /// The tokens now.
    pub fn load(&self) -> arc_swap::Guard<Arc<Auth>> {
        self.0.load()
    }

    /// Replaces the tokens, for every front-end at once.
    pub fn replace(&self, auth: Auth) {
        self.0.store(Arc::new(auth));
    }

    /// [`Auth::check`] against the tokens now.
    ///
    /// # Errors
    /// Why the request is refused.
    pub fn check(&self, header: Option<&[u8]>, need: Scope) -> Result<Option<Arc<str>>, Denied> {
        self.0.load().check(header, need)
    }
}

impl Default for AuthHandle {
    /// Open: no tokens.
    fn default() -> Self {
        AuthHandle::new(Auth::open())
    }
}

/// The token of `Bearer <token>` (the scheme in any case, RFC 6750), or None.
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let header = header.trim_ascii();
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.strip_prefix(b" ")?.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        let mut a = Auth::open();
        a.add("reader", digest(b"r-secret-0123456789"), &[Scope::Read])
            .expect("reader");
        a.add(
            "pipeline",
            digest(b"w-secret-0123456789"),
            &[Scope::Read, Scope::Write],
        )
        .expect("pipeline");
        a
    }

    #[test]
    fn open_allows_everything() {
        assert_eq!(Auth::open().check(None, Scope::Admin), Ok(None));
    }

    #[test]
    fn tokens_are_checked_by_scope() {
        let a = auth();
        let ok = |h: &str, s| {
            a.check(Some(h.as_bytes()), s)
                .map(|n| n.map(|n| n.to_string()))
        };
        assert_eq!(
            ok("Bearer r-secret-0123456789", Scope::Read),
            Ok(Some("reader".into()))
        );
        assert_eq!(
            ok("bearer  w-secret-0123456789 ", Scope::Write),
            Ok(Some("pipeline".into()))
        );
        assert!(matches!(
            ok("Bearer r-secret-0123456789", Scope::Write),
            Err(Denied::Scope {
                need: Scope::Write,
                ..
            })
        ));
        assert_eq!(ok("Bearer nope", Scope::Read), Err(Denied::Unknown));
        assert_eq!(ok("Basic abc", Scope::Read), Err(Denied::Malformed));
        assert_eq!(ok("Bearer", Scope::Read), Err(Denied::Malformed));
        assert_eq!(ok("Bearer ", Scope::Read), Err(Denied::Malformed));
        assert_eq!(a.check(None, Scope::Read), Err(Denied::Missing));
    }

    #[test]
    fn messages_never_hold_the_token() {
        let a = auth();
        for h in ["Bearer r-secret-0123456789", "Bearer guess", "Token guess"] {
            if let Err(e) = a.check(Some(h.as_bytes()), Scope::Admin) {
                let text = format!("{e} {e:?} {a:?}");
                assert!(
                    !text.contains("secret") && !text.contains("guess"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn bad_configurations_are_refused() {
        let mut a = auth();
        assert!(a.add("reader", digest(b"x"), &[Scope::Read]).is_err());
        assert!(a.add("", digest(b"x"), &[Scope::Read]).is_err());
        assert!(a.add("x", digest(b"x"), &[]).is_err());
        let e = a
            .add("again", digest(b"r-secret-0123456789"), &[Scope::Read])
            .expect_err("same token");
        assert!(e.contains("reader") && e.contains("again"), "{e}");
    }

    #[test]
    fn digests_round_trip_as_hex() {
        let d = digest(b"abc");
        let hex = digest_hex(&d);
        // The well-known SHA-256 of "abc".
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_digest_hex(&hex.to_uppercase()), Ok(d));
        assert!(parse_digest_hex("abc").is_err());
        assert!(parse_digest_hex(&"g".repeat(64)).is_err());
    }
}
