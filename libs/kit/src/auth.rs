//! Who is calling: signed tokens, the caller a token names, revoked tokens, per-organization
//! rate limits, and the one interceptor that checks them all.
//!
//! A token is a JWT (RFC 7519) in compact form, signed with Ed25519 (`alg` `EdDSA`, RFC 8037)
//! by the process's own key, which lives in `signing.key` in its data directory. It names an
//! organization and the roles it holds, and expires. Every gRPC service puts [`Authenticator`]
//! in front of itself (`FooServer::with_interceptor(service, authenticator)`); handlers then ask
//! [`caller`] who is calling and check roles and ownership through [`Caller`].
//!
//! A token that verified once is kept in [`VerifiedTokens`], a cache bounded in entries and
//! keyed by the token's SHA-256 (never the token itself), and is not verified again with
//! Ed25519 until it expires: a partner app sends the same token on every call, and the
//! signature check would otherwise be most of the cost of a read. Revocations and rate limits
//! are checked on every call after the cache, so revoking a token takes effect at once.
//!
//! This module must never log, echo or keep in clear a token (a token is a password), never
//! accept a token signed with any algorithm but EdDSA or by any key but its own, and never read
//! the clock anywhere but in the interceptor: verification is a pure function of the token and
//! the time.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read as _};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{SECRET_KEY_LENGTH, Signature, Signer as _, SigningKey, VerifyingKey};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use symbiose_domain::Role;
use symbiose_eventstore::embedded::disk;
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};
use uuid::Uuid;

use crate::{ApiError, ServerConfig};

/// Longest token accepted, in bytes. Ours are under 500; the limit bounds the work an
/// unauthenticated caller can make us do.
pub const TOKEN_BYTES_MAX: usize = 4096;
/// The file, in the key directory, that holds the signing key's 32-byte seed.
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// The permission bits of the signing key and the operator token: secrets of their owner.
const SECRET_FILE_MODE: u32 = 0o600;
/// Most tokens [`VerifiedTokens`] keeps: about 200 bytes each, so at most a few megabytes.
/// Far more than the partner apps calling at once; past it, the least used are verified again.
pub const VERIFIED_TOKENS_MAX: u64 = 16_384;
/// Calls checked against the rate limits between two sweeps of the organizations whose
/// buckets are full again (see [`RateLimits`]).
pub const RATE_LIMIT_SWEEP_CALLS: u64 = 4096;

/// The `iss` claim of every token.
const ISSUER: &str = "symbiose";
/// The one `alg` accepted.
const ALGORITHM: &str = "EdDSA";
/// Bytes of the public key shown, in hex, as the `kid` header.
const KEY_ID_BYTES: usize = 8;

/// What a token says, once its signature is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub organization_id: Uuid,
    pub roles: Vec<Role>,
    pub issued_at_s: u64,
    pub expires_at_s: u64,
    pub token_id: Uuid,
}

/// Why a token was refused. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token algorithm is not EdDSA")]
    WrongAlgorithm,
    #[error("token signature does not verify with this server's key")]
    BadSignature,
    #[error("token expired at {expired_at_s} (unix seconds)")]
    Expired { expired_at_s: u64 },
    #[error("token is longer than {TOKEN_BYTES_MAX} bytes")]
    TooLong,
    #[error("token names an unknown role {0:?}")]
    UnknownRole(String),
}

/// Why the signing key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "signing key file {} holds {size_bytes} bytes instead of {SECRET_KEY_LENGTH}: refusing to use or replace it",
        path.display()
    )]
    KeyFileSize { path: PathBuf, size_bytes: u64 },
    #[error("drawing random bytes for a new signing key: {0}")]
    Random(String),
    #[error(
        "{}: the platform's signing key is missing. Every process of the platform checks tokens with the same key: copy it here from another process's data directory, or make the platform's first one with `symbiose key create --data-dir <data dir>`",
        path.display()
    )]
    MissingKey { path: PathBuf },
    #[error("{}: a signing key is already there; refusing to replace it, which would invalidate every token issued", path.display())]
    KeyExists { path: PathBuf },
}

/// Whether a server may make the platform's signing key when it finds none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPolicy {
    /// The one-process server: the platform is this process, its first start makes the key.
    CreateIfMissing,
    /// A service alone, a catalog replica: the key is the platform's, made once and shared;
    /// one made here would refuse every token the others issue.
    MustExist,
}

/// Issues and verifies tokens with one Ed25519 key.
#[derive(Clone)]
pub struct TokenAuthority {
    signing_key: SigningKey,
    verifying_key: VerifyingKey,
    key_id: String,
}

impl fmt::Debug for TokenAuthority {
    // The derived Debug would reach the secret key; the key id is enough to tell keys apart.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("TokenAuthority").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl TokenAuthority {
    /// Loads the key from `dir/signing.key`, or creates it (and `dir`) if the file does not
    /// exist. Returns the authority and whether the key was created.
    ///
    /// A new key is written to a temporary file with mode 0600, synced, renamed into place,
    /// and the directory synced: a crash leaves either no key or the whole key, never a torn
    /// one. A key file of the wrong size is refused, never replaced, since replacing it would
    /// silently invalidate every token issued.
    pub fn load_or_create(dir: &Path) -> Result<(TokenAuthority, bool), AuthError> {
        match TokenAuthority::load(dir) {
            Err(AuthError::MissingKey { .. }) => Ok((TokenAuthority::create(dir)?, true)),
            loaded => loaded.map(|authority| (authority, false)),
        }
    }

    /// Loads the key from `dir/signing.key`; a missing file is [`AuthError::MissingKey`].
    pub fn load(dir: &Path) -> Result<TokenAuthority, AuthError> {
        let path = dir.join(SIGNING_KEY_FILE);
        match File::open(&path) {
            Ok(file) => Ok(TokenAuthority::from_seed(read_seed(file, &path)?)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Err(AuthError::MissingKey { path }),
            Err(error) => Err(io_error("opening the signing key", &path)(error)),
        }
    }

    /// Makes a new key in `dir/signing.key` (and `dir`); refuses if one is there.
    pub fn create(dir: &Path) -> Result<TokenAuthority, AuthError> {
        disk::create_dir_all_durably(dir).map_err(io_error("creating the key directory", dir))?;
        let path = dir.join(SIGNING_KEY_FILE);
        if path.exists() {
            return Err(AuthError::KeyExists { path });
        }
        let mut seed = [0_u8; SECRET_KEY_LENGTH];
        getrandom::fill(&mut seed).map_err(|error| AuthError::Random(error.to_string()))?;
        write_seed(&path, &seed)?;
        Ok(TokenAuthority::from_seed(seed))
    }

    /// The authority of a known seed: for tests, and for keys kept elsewhere.
    pub fn from_seed(seed: [u8; 32]) -> TokenAuthority {
        let signing_key = SigningKey::from_bytes(&seed);
        let verifying_key = signing_key.verifying_key();
        let key_id = hex(&verifying_key.as_bytes()[..KEY_ID_BYTES]);
        TokenAuthority { signing_key, verifying_key, key_id }
    }

    /// The hex of the first 8 bytes of the public key: the `kid` header of its tokens.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A signed token carrying `claims`. Roles are written once each, in a fixed order, so a
    /// token stays far below [`TOKEN_BYTES_MAX`].
    pub fn issue(&self, claims: &Claims) -> String {
        let mut roles = claims.roles.clone();
        roles.sort();
        roles.dedup();
        let header = Header { alg: ALGORITHM.to_owned(), typ: "JWT".to_owned(), kid: self.key_id.clone() };
        let body = WireClaims {
            iss: ISSUER.to_owned(),
            sub: claims.organization_id.to_string(),
            roles: roles.iter().map(|role| role.key().to_owned()).collect(),
            iat: claims.issued_at_s,
            exp: claims.expires_at_s,
            jti: claims.token_id.to_string(),
        };
        let mut token = encode_json(&header);
        token.push('.');
        token.push_str(&encode_json(&body));
        let signature = self.signing_key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        debug_assert!(token.len() <= TOKEN_BYTES_MAX, "an issued token must be accepted");
        token
    }

    /// The claims of `token` if this authority signed it and it has not expired at `now_s`.
    ///
    /// The algorithm is checked before the signature and the signature before the claims are
    /// read, so nothing a forger wrote is trusted.
    pub fn verify(&self, token: &str, now_s: u64) -> Result<Claims, TokenError> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(TokenError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header_part), Some(claims_part), Some(signature_part), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected three parts separated by dots"));
        };
        let header: Header = decode_json(header_part)
            .ok_or_else(|| malformed("the header is not base64url JSON with a string `alg`"))?;
        if header.alg != ALGORITHM {
            return Err(TokenError::WrongAlgorithm);
        }
        let signature_bytes = URL_SAFE_NO_PAD
            .decode(signature_part)
            .map_err(|_| malformed("the signature is not base64url"))?;
        let signature = Signature::from_slice(&signature_bytes)
            .map_err(|_| malformed("the signature is not 64 bytes"))?;
        let signed = &token.as_bytes()[..header_part.len() + 1 + claims_part.len()];
        // Strict verification also refuses the malleable and small-order forms of a signature.
        self.verifying_key.verify_strict(signed, &signature).map_err(|_| TokenError::BadSignature)?;

        let claims: WireClaims = decode_json(claims_part).ok_or_else(|| {
            malformed("the claims are not base64url JSON with iss, sub, roles, iat, exp and jti")
        })?;
        if claims.iss != ISSUER {
            return Err(malformed("the issuer is not symbiose"));
        }
        let organization_id =
            Uuid::parse_str(&claims.sub).map_err(|_| malformed("the subject is not an organization id"))?;
        let token_id = Uuid::parse_str(&claims.jti).map_err(|_| malformed("the token id is not a uuid"))?;
        let roles = claims
            .roles
            .iter()
            .map(|key| Role::from_key(key).ok_or_else(|| TokenError::UnknownRole(key.clone())))
            .collect::<Result<Vec<Role>, TokenError>>()?;
        if now_s >= claims.exp {
            return Err(TokenError::Expired { expired_at_s: claims.exp });
        }
        Ok(Claims { organization_id, roles, issued_at_s: claims.iat, expires_at_s: claims.exp, token_id })
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub organization_id: Uuid,
    pub roles: Vec<Role>,
    pub token_id: Uuid,
    pub expires_at_s: u64,
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_operator(&self) -> bool {
        self.has_role(Role::Operator)
    }

    /// Ok if the caller holds `role`. Operators are not exempt: an operator acting as a
    /// producer needs a token with the producer role, so that what it did says what it was.
    pub fn require_role(&self, role: Role) -> Result<(), ApiError> {
        if self.has_role(role) {
            return Ok(());
        }
        Err(ApiError::PermissionDenied(format!("this call needs the {role} role")))
    }

    /// Ok if the caller holds at least one of `roles`.
    pub fn require_any_role(&self, roles: &[Role]) -> Result<(), ApiError> {
        debug_assert!(!roles.is_empty(), "a call needs at least one role");
        if roles.iter().any(|role| self.has_role(*role)) {
            return Ok(());
        }
        match roles {
            [role] => self.require_role(*role),
            _ => {
                let keys: Vec<&str> = roles.iter().map(|role| role.key()).collect();
                Err(ApiError::PermissionDenied(format!(
                    "this call needs one of the roles {}",
                    keys.join(", ")
                )))
            }
        }
    }

    /// Ok if the data of `organization_id` is the caller's own, or the caller is an operator.
    pub fn require_organization(&self, organization_id: Uuid) -> Result<(), ApiError> {
        if self.organization_id == organization_id || self.is_operator() {
            return Ok(());
        }
        Err(ApiError::PermissionDenied(format!(
            "organization {} may not act on the data of organization {organization_id}",
            self.organization_id
        )))
    }
}

impl From<Claims> for Caller {
    fn from(claims: Claims) -> Caller {
        Caller {
            organization_id: claims.organization_id,
            roles: claims.roles,
            token_id: claims.token_id,
            expires_at_s: claims.expires_at_s,
        }
    }
}

/// The caller that [`Authenticator`] put in the request; `UNAUTHENTICATED` if there is none,
/// which happens only for a service mounted without the interceptor.
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| {
        Status::from(ApiError::Unauthenticated(
            "no authenticated caller: send `authorization: Bearer <token>`".to_owned(),
        ))
    })
}

/// The ids of revoked tokens, shared by every clone.
///
/// Bounded by nothing but the tokens issued: an id stays until the process stops, even after
/// its token expires, since a set this small (16 bytes an id) is cheaper to keep than to
/// sweep. Nothing here is durable: whoever revokes tokens records it and replays the
/// revocations at start.
#[derive(Clone, Default)]
pub struct Revocations {
    revoked: Arc<RwLock<HashSet<Uuid>>>,
}

impl fmt::Debug for Revocations {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Revocations").field("len", &self.len()).finish()
    }
}

impl Revocations {
    pub fn new() -> Revocations {
        Revocations::default()
    }

    pub fn revoke(&self, token_id: Uuid) {
        // A panic elsewhere cannot leave a set of ids half-updated, so a poisoned lock is
        // still good to use.
        self.revoked.write().unwrap_or_else(PoisonError::into_inner).insert(token_id);
    }

    pub fn is_revoked(&self, token_id: Uuid) -> bool {
        self.revoked.read().unwrap_or_else(PoisonError::into_inner).contains(&token_id)
    }

    pub fn len(&self) -> usize {
        self.revoked.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Every revoked token's id, in no order.
    pub fn revoked_ids(&self) -> Vec<Uuid> {
        self.revoked.read().unwrap_or_else(PoisonError::into_inner).iter().copied().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A token bucket per organization, operators included, shared by every clone.
///
/// The store holds a bucket for each organization that called recently. Every
/// [`RATE_LIMIT_SWEEP_CALLS`] calls it drops the buckets that are full again, which are the
/// same as no bucket. So it is bounded by the organizations that called since their bucket
/// last refilled (at most `burst / per_second` seconds ago) plus those seen since the last
/// sweep, and never by anything a caller invents: only a verified token adds an organization.
#[derive(Clone)]
pub struct RateLimits {
    limiter: Arc<DefaultKeyedRateLimiter<Uuid>>,
    per_second: NonZeroU32,
    burst: NonZeroU32,
    calls: Arc<AtomicU64>,
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RateLimits")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .field("organizations", &self.organizations())
            .finish()
    }
}

impl RateLimits {
    /// `per_second` calls a second on average, up to `burst` at once after a quiet spell.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> RateLimits {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        RateLimits {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            per_second,
            burst,
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The limits of `SYMBIOSE_RATE_LIMIT_PER_SECOND` and `SYMBIOSE_RATE_LIMIT_BURST`.
    pub fn from_config(config: &ServerConfig) -> RateLimits {
        RateLimits::new(config.rate_limit_per_second, config.rate_limit_burst)
    }

    /// Takes one call from the organization's bucket, or `RESOURCE_EXHAUSTED` if it is empty.
    pub fn check(&self, organization_id: Uuid) -> Result<(), ApiError> {
        let calls = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if calls.is_multiple_of(RATE_LIMIT_SWEEP_CALLS) {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&organization_id).map_err(|_| {
            ApiError::ResourceExhausted(format!(
                "organization {organization_id} is over its rate limit of {} calls per second",
                self.per_second
            ))
        })
    }

    /// The organizations that have a bucket now.
    pub fn organizations(&self) -> usize {
        self.limiter.len()
    }
}

/// The claims of tokens already verified, keyed by the SHA-256 of the token, shared by every
/// clone, at most `capacity` of them (the least used leave first).
///
/// Only a token whose signature and claims verified is kept, so nothing a forger sends takes
/// a place. A kept token is still refused from its expiry on, judged at the time of each call.
/// Keying by a digest keeps no token in memory longer than its call; a second token with the
/// digest of a verified one would be a SHA-256 collision.
#[derive(Clone)]
pub struct VerifiedTokens {
    claims: moka::sync::Cache<[u8; 32], Claims>,
}

impl fmt::Debug for VerifiedTokens {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("VerifiedTokens").field("len", &self.claims.entry_count()).finish()
    }
}

impl VerifiedTokens {
    pub fn new(capacity: u64) -> VerifiedTokens {
        VerifiedTokens { claims: moka::sync::Cache::new(capacity) }
    }

    /// The claims of `token` at `now_s`, as [`TokenAuthority::verify`] gives them, verified
    /// with `authority` only if the token is not kept yet.
    pub fn verify(&self, authority: &TokenAuthority, token: &str, now_s: u64) -> Result<Claims, TokenError> {
        // Before hashing: the length bounds the work an unauthenticated caller can make us do.
        if token.len() > TOKEN_BYTES_MAX {
            return Err(TokenError::TooLong);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.claims.get(&digest) {
            if now_s >= claims.expires_at_s {
                self.claims.invalidate(&digest);
                return Err(TokenError::Expired { expired_at_s: claims.expires_at_s });
            }
            return Ok(claims);
        }
        let claims = authority.verify(token, now_s)?;
        self.claims.insert(digest, claims.clone());
        Ok(claims)
    }

    /// Tokens kept, once the cache's pending evictions have run.
    pub fn len(&self) -> u64 {
        self.claims.run_pending_tasks();
        self.claims.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The interceptor in front of every service: reads `authorization: Bearer <token>`, verifies
/// the token (or finds it among the tokens verified before), refuses revoked ones, applies the
/// caller's rate limit, and puts the [`Caller`] in the request's extensions.
#[derive(Debug, Clone)]
pub struct Authenticator {
    authority: TokenAuthority,
    verified: VerifiedTokens,
    revocations: Revocations,
    rate_limits: RateLimits,
}

impl Authenticator {
    /// An authenticator keeping at most [`VERIFIED_TOKENS_MAX`] verified tokens.
    pub fn new(
        authority: TokenAuthority,
        revocations: Revocations,
        rate_limits: RateLimits,
    ) -> Authenticator {
        Authenticator::with_verified_tokens(authority, revocations, rate_limits, VERIFIED_TOKENS_MAX)
    }

    /// An authenticator keeping at most `verified_tokens_max` verified tokens.
    pub fn with_verified_tokens(
        authority: TokenAuthority,
        revocations: Revocations,
        rate_limits: RateLimits,
        verified_tokens_max: u64,
    ) -> Authenticator {
        let verified = VerifiedTokens::new(verified_tokens_max);
        Authenticator { authority, verified, revocations, rate_limits }
    }

    /// The caller that `metadata` authenticates at `now_s`, after its rate limit.
    pub fn authenticate(&self, metadata: &MetadataMap, now_s: u64) -> Result<Caller, Status> {
        let unauthenticated = |message: &str| Status::from(ApiError::Unauthenticated(message.to_owned()));
        let value = metadata.get("authorization").ok_or_else(|| {
            unauthenticated("missing authorization metadata: send `authorization: Bearer <token>`")
        })?;
        let bad_scheme = || unauthenticated("the authorization metadata must be `Bearer <token>`");
        let value = value.to_str().map_err(|_| bad_scheme())?;
        let (scheme, token) = value.trim().split_once(' ').ok_or_else(bad_scheme)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(bad_scheme());
        }
        let claims = self
            .verified
            .verify(&self.authority, token.trim(), now_s)
            .map_err(|error| Status::from(ApiError::Unauthenticated(error.to_string())))?;
        // After the cache, on every call: a revocation takes effect at once.
        if self.revocations.is_revoked(claims.token_id) {
            return Err(unauthenticated(&format!("token {} has been revoked", claims.token_id)));
        }
        self.rate_limits.check(claims.organization_id)?;
        Ok(Caller::from(claims))
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.authenticate(request.metadata(), unix_now_s())?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// How long the token of one call between the platform's services is valid, in seconds.
pub const SERVICE_CALL_TOKEN_TTL_S: u64 = 60;

/// A call from one of the platform's services to another (each service alone): `message` with a
/// short-lived token of the platform's service role, signed with the platform's key, so the
/// callee's one authenticator checks it like any other.
pub fn service_request<T>(authority: &TokenAuthority, message: T) -> Request<T> {
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let token = authority.issue(&Claims {
        organization_id: OPERATOR_ORGANIZATION_ID,
        roles: vec![Role::Service],
        issued_at_s: now_s,
        expires_at_s: now_s + SERVICE_CALL_TOKEN_TTL_S,
        token_id: Uuid::now_v7(),
    });
    let mut request = Request::new(message);
    // A signed token is base64url and dots: always a valid header value.
    let bearer = format!("Bearer {token}").parse().expect("a token is a header value");
    request.metadata_mut().insert("authorization", bearer);
    with_traceparent(request)
}

/// The same call between two services of one process: the handler is called directly, with the
/// platform's service as the caller the authenticator would have put in the request.
pub fn service_request_in_process<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(Caller {
        organization_id: OPERATOR_ORGANIZATION_ID,
        roles: vec![Role::Service],
        token_id: Uuid::nil(),
        expires_at_s: u64::MAX,
    });
    with_traceparent(request)
}

/// `request` with the `traceparent` of the work in progress, if any, so the callee continues
/// its trace (in one process the handler runs in the caller's context anyway).
fn with_traceparent<T>(mut request: Request<T>) -> Request<T> {
    if let Some(context) = crate::trace::current() {
        let traceparent = context.traceparent().parse().expect("a traceparent is a header value");
        request.metadata_mut().insert(crate::trace::TRACEPARENT_HEADER, traceparent);
    }
    request
}

/// The organization id of the platform operator, named in its tokens.
pub const OPERATOR_ORGANIZATION_ID: Uuid = Uuid::nil();
/// The operator's token, in the data directory, written when missing.
pub const OPERATOR_TOKEN_FILE: &str = "operator.token";
/// The directory of the signing key, in the data directory.
pub const KEYS_DIR: &str = "keys";
/// Validity of an operator token written at start, in days.
const OPERATOR_TOKEN_TTL_DAYS: u64 = 365;
/// An operator token closer than this to its expiry is renewed at start, in seconds.
const OPERATOR_TOKEN_RENEW_BEFORE_S: u64 = 30 * 86_400;

/// What every server needs to check callers: the signing key, the revoked tokens, and the
/// authenticator that puts both to use, with the rate limits of the configuration.
#[derive(Debug, Clone)]
pub struct Security {
    pub authority: TokenAuthority,
    pub revocations: Revocations,
    pub authenticator: Authenticator,
    /// Where the operator's token is.
    pub operator_token_path: PathBuf,
}

impl Security {
    /// Loads the signing key under `<data dir>/keys` (or, with
    /// [`KeyPolicy::CreateIfMissing`], creates it on a first start), and writes an operator
    /// token to `<data dir>/operator.token` if there is none.
    pub fn open(config: &ServerConfig, key: KeyPolicy) -> Result<Security, AuthError> {
        let keys_dir = config.data_dir.join(KEYS_DIR);
        let (authority, created) = match key {
            KeyPolicy::CreateIfMissing => TokenAuthority::load_or_create(&keys_dir)?,
            KeyPolicy::MustExist => (TokenAuthority::load(&keys_dir)?, false),
        };
        if created {
            tracing::info!(dir = %keys_dir.display(), "created the token signing key");
        }
        let operator_token_path = config.data_dir.join(OPERATOR_TOKEN_FILE);
        // A missing, damaged or expired operator token is written anew, so the operator is
        // never locked out of a running platform.
        let now_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
        let usable = fs::read_to_string(&operator_token_path).ok().is_some_and(|token| {
            authority.verify(token.trim(), now_s + OPERATOR_TOKEN_RENEW_BEFORE_S).is_ok()
        });
        if !usable {
            write_operator_token(&authority, &operator_token_path)?;
            tracing::info!(path = %operator_token_path.display(), "wrote the operator token");
        }
        let revocations = Revocations::new();
        let authenticator =
            Authenticator::new(authority.clone(), revocations.clone(), RateLimits::from_config(config));
        Ok(Security { authority, revocations, authenticator, operator_token_path })
    }
}

/// Issues a token for the platform operator and writes it to `path`, readable by its owner
/// only.
fn write_operator_token(authority: &TokenAuthority, path: &Path) -> Result<(), AuthError> {
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let claims = Claims {
        organization_id: OPERATOR_ORGANIZATION_ID,
        roles: vec![Role::Operator],
        issued_at_s: now_s,
        expires_at_s: now_s + OPERATOR_TOKEN_TTL_DAYS * 86_400,
        token_id: Uuid::now_v7(),
    };
    let io_error = |action: &'static str| {
        move |source: io::Error| AuthError::Io { action, path: path.to_path_buf(), source }
    };
    // Replaced whole or not at all: a crash never leaves half a token.
    let token = format!("{}\n", authority.issue(&claims));
    disk::write_file_durably(path, token.as_bytes(), SECRET_FILE_MODE, disk::Existing::Replace)
        .map_err(io_error("writing the operator token"))
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: String,
    #[serde(default)]
    kid: String,
}

#[derive(Serialize, Deserialize)]
struct WireClaims {
    iss: String,
    sub: String,
    roles: Vec<String>,
    iat: u64,
    exp: u64,
    jti: String,
}

fn malformed(reason: &str) -> TokenError {
    TokenError::Malformed(reason.to_owned())
}

fn encode_json(value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).expect("a struct of strings and numbers always serializes");
    URL_SAFE_NO_PAD.encode(json)
}

/// The value a base64url JSON part holds; `None` whatever is wrong, since the details of a
/// parse error would quote the token.
fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let json = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&json).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Seconds since the epoch. A clock set before 1970 expires every token: failing closed is
/// better than accepting tokens whose expiry cannot be judged.
fn unix_now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(u64::MAX, |elapsed| elapsed.as_secs())
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AuthError {
    let path = path.to_owned();
    move |source| AuthError::Io { action, path, source }
}

fn read_seed(mut file: File, path: &Path) -> Result<[u8; SECRET_KEY_LENGTH], AuthError> {
    let size_bytes = file.metadata().map_err(io_error("reading the signing key", path))?.len();
    if size_bytes != SECRET_KEY_LENGTH as u64 {
        return Err(AuthError::KeyFileSize { path: path.to_owned(), size_bytes });
    }
    let mut seed = [0_u8; SECRET_KEY_LENGTH];
    file.read_exact(&mut seed).map_err(io_error("reading the signing key", path))?;
    Ok(seed)
}

fn write_seed(path: &Path, seed: &[u8; SECRET_KEY_LENGTH]) -> Result<(), AuthError> {
    // Linked into place, never renamed: it never replaces a key another process put there
    // meanwhile.
    match disk::write_file_durably(path, seed, SECRET_FILE_MODE, disk::Existing::Keep) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            Err(AuthError::KeyExists { path: path.to_owned() })
        }
        Err(error) => Err(io_error("writing the signing key", path)(error)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_operator_token_is_kept_while_valid_and_written_anew_when_not() {
        let dir = tempfile::tempdir().expect("dir");
        let config = ServerConfig::for_tests(dir.path().to_path_buf());
        let first = Security::open(&config, KeyPolicy::CreateIfMissing).expect("first start");
        let token = fs::read_to_string(&first.operator_token_path).expect("token");
        let now_s = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let claims = first.authority.verify(token.trim(), now_s).expect("a valid token");
        assert_eq!(claims.organization_id, OPERATOR_ORGANIZATION_ID);
        assert_eq!(claims.roles, vec![Role::Operator]);

        let second = Security::open(&config, KeyPolicy::MustExist).expect("second start");
        assert_eq!(fs::read_to_string(&second.operator_token_path).expect("token"), token, "kept");

        fs::write(&first.operator_token_path, "damaged").expect("damage it");
        let third = Security::open(&config, KeyPolicy::MustExist).expect("third start");
        let renewed = fs::read_to_string(&third.operator_token_path).expect("token");
        assert!(third.authority.verify(renewed.trim(), now_s).is_ok(), "written anew");
    }

    #[test]
    fn a_service_alone_refuses_to_start_without_the_platforms_key_and_makes_none() {
        let dir = tempfile::tempdir().expect("dir");
        let config = ServerConfig::for_tests(dir.path().to_path_buf());
        let refused = Security::open(&config, KeyPolicy::MustExist).expect_err("no key");
        let key = dir.path().join(KEYS_DIR).join(SIGNING_KEY_FILE);
        assert!(matches!(&refused, AuthError::MissingKey { path } if *path == key), "{refused}");
        assert!(refused.to_string().contains(&key.display().to_string()), "names the file: {refused}");
        assert!(refused.to_string().contains("symbiose key create"), "says how to make one: {refused}");
        assert!(!key.exists(), "no key of its own");
        assert!(!dir.path().join(OPERATOR_TOKEN_FILE).exists(), "nothing written");

        let made = TokenAuthority::create(&dir.path().join(KEYS_DIR)).expect("the platform's key");
        let again = TokenAuthority::create(&dir.path().join(KEYS_DIR)).expect_err("never replaced");
        assert!(matches!(again, AuthError::KeyExists { .. }), "{again}");
        let opened = Security::open(&config, KeyPolicy::MustExist).expect("the key is there");
        assert_eq!(opened.authority.key_id(), made.key_id(), "the same key");
    }

    use super::*;
    use tonic::Code;
    use tonic::metadata::MetadataValue;

    const NOW_S: u64 = 1_750_000_000;
    const DAY_S: u64 = 86_400;

    fn authority() -> TokenAuthority {
        TokenAuthority::from_seed([7; 32])
    }

    fn claims(roles: &[Role]) -> Claims {
        Claims {
            organization_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            roles: roles.to_vec(),
            issued_at_s: NOW_S - DAY_S,
            expires_at_s: NOW_S + DAY_S,
            token_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00aa),
        }
    }

    /// A token whose header and claims are the given JSON, signed by `authority`.
    fn sign_raw(authority: &TokenAuthority, header: &str, claims: &str) -> String {
        let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let signature = authority.signing_key.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn part(token: &str, index: usize) -> serde_json::Value {
        let part = token.split('.').nth(index).expect("part");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
    }

    #[test]
    fn an_issued_token_verifies_to_its_claims() {
        let authority = authority();
        let claims = claims(&[Role::Producer, Role::Buyer]);
        let token = authority.issue(&claims);

        let verified = authority.verify(&token, NOW_S).expect("valid token");
        assert_eq!(verified.organization_id, claims.organization_id);
        assert_eq!(verified.token_id, claims.token_id);
        assert_eq!((verified.issued_at_s, verified.expires_at_s), (claims.issued_at_s, claims.expires_at_s));
        let mut roles = verified.roles;
        roles.sort();
        assert_eq!(roles, vec![Role::Producer, Role::Buyer]);
    }

    #[test]
    fn a_token_is_a_compact_jwt_with_the_documented_header_and_claims() {
        let authority = authority();
        let token = authority.issue(&claims(&[Role::Carrier]));
        assert_eq!(token.split('.').count(), 3);
        assert!(!token.contains('='), "no padding");

        let header = part(&token, 0);
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], authority.key_id());
        assert_eq!(authority.key_id().len(), 16);
        assert_eq!(authority.key_id(), hex(&authority.verifying_key.as_bytes()[..8]));

        let body = part(&token, 1);
        assert_eq!(body["iss"], "symbiose");
        assert_eq!(body["sub"], "01900000-0000-7000-8000-000000000001");
        assert_eq!(body["roles"], serde_json::json!(["carrier"]));
        assert_eq!(body["iat"], NOW_S - DAY_S);
        assert_eq!(body["exp"], NOW_S + DAY_S);
        assert_eq!(body["jti"], "01900000-0000-7000-8000-0000000000aa");
    }

    #[test]
    fn a_token_expires_at_its_expiry() {
        let authority = authority();
        let token = authority.issue(&claims(&[Role::Buyer]));
        assert!(authority.verify(&token, NOW_S + DAY_S - 1).is_ok());
        assert_eq!(
            authority.verify(&token, NOW_S + DAY_S),
            Err(TokenError::Expired { expired_at_s: NOW_S + DAY_S })
        );
    }

    #[test]
    fn tampered_claims_break_the_signature() {
        let authority = authority();
        let token = authority.issue(&claims(&[Role::Buyer]));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let forged = part(&token, 1).to_string().replace("\"buyer\"", "\"operator\"");
        parts[1] = URL_SAFE_NO_PAD.encode(forged);
        assert_eq!(authority.verify(&parts.join("."), NOW_S), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_token_from_another_key_has_a_bad_signature() {
        let stranger = TokenAuthority::from_seed([8; 32]);
        let token = stranger.issue(&claims(&[Role::Operator]));
        assert_eq!(authority().verify(&token, NOW_S), Err(TokenError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed_and_never_quoted() {
        let authority = authority();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA"}"#);
        let cases = [
            String::new(),
            "secret-garbage".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            "!!!.secret.sig".to_owned(),
            format!("{}.e30.AA", URL_SAFE_NO_PAD.encode("not json secret")),
            format!("{header}.e30.!!!"),
            format!("{header}.e30.AAAA"),
        ];
        for token in cases {
            match authority.verify(&token, NOW_S) {
                Err(error @ TokenError::Malformed(_)) => {
                    assert!(!error.to_string().contains("secret"), "{error}");
                }
                other => panic!("{token:?}: expected Malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn signed_claims_that_are_not_ours_are_refused() {
        let authority = authority();
        let header = r#"{"alg":"EdDSA","typ":"JWT"}"#;
        let other_issuer = r#"{"iss":"other","sub":"01900000-0000-7000-8000-000000000001","roles":[],"iat":0,"exp":9999999999,"jti":"01900000-0000-7000-8000-0000000000aa"}"#;
        let bad_subject = r#"{"iss":"symbiose","sub":"acme","roles":[],"iat":0,"exp":9999999999,"jti":"01900000-0000-7000-8000-0000000000aa"}"#;
        let unknown_role = r#"{"iss":"symbiose","sub":"01900000-0000-7000-8000-000000000001","roles":["admin"],"iat":0,"exp":9999999999,"jti":"01900000-0000-7000-8000-0000000000aa"}"#;
        let missing_expiry = r#"{"iss":"symbiose","sub":"01900000-0000-7000-8000-000000000001","roles":[],"iat":0,"jti":"01900000-0000-7000-8000-0000000000aa"}"#;

        assert!(matches!(
            authority.verify(&sign_raw(&authority, header, other_issuer), NOW_S),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            authority.verify(&sign_raw(&authority, header, bad_subject), NOW_S),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            authority.verify(&sign_raw(&authority, header, missing_expiry), NOW_S),
            Err(TokenError::Malformed(_))
        ));
        assert_eq!(
            authority.verify(&sign_raw(&authority, header, unknown_role), NOW_S),
            Err(TokenError::UnknownRole("admin".to_owned()))
        );
    }

    #[test]
    fn an_over_long_token_is_refused_before_it_is_read() {
        let token = "a".repeat(TOKEN_BYTES_MAX + 1);
        assert_eq!(authority().verify(&token, NOW_S), Err(TokenError::TooLong));
    }

    #[test]
    fn only_eddsa_is_accepted() {
        let authority = authority();
        let body = r#"{"iss":"symbiose","sub":"01900000-0000-7000-8000-000000000001","roles":["operator"],"iat":0,"exp":9999999999,"jti":"01900000-0000-7000-8000-0000000000aa"}"#;
        for alg in ["none", "HS256", "RS256", "eddsa"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            let token = sign_raw(&authority, &header, body);
            assert_eq!(authority.verify(&token, NOW_S), Err(TokenError::WrongAlgorithm), "{alg}");
        }
        let unsigned =
            format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(body));
        assert_eq!(authority.verify(&unsigned, NOW_S), Err(TokenError::WrongAlgorithm));
    }

    #[test]
    fn the_key_is_created_once_then_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_dir = dir.path().join("keys");
        let (created, was_created) = TokenAuthority::load_or_create(&key_dir).expect("create");
        assert!(was_created);
        let (loaded, was_created) = TokenAuthority::load_or_create(&key_dir).expect("load");
        assert!(!was_created);
        assert_eq!(created.key_id(), loaded.key_id());
        let token = created.issue(&claims(&[Role::Producer]));
        assert!(loaded.verify(&token, NOW_S).is_ok());

        let path = key_dir.join(SIGNING_KEY_FILE);
        assert_eq!(fs::metadata(&path).expect("key file").len(), 32);
        let names: Vec<_> =
            fs::read_dir(&key_dir).expect("key dir").map(|entry| entry.expect("entry").file_name()).collect();
        assert_eq!(names, [SIGNING_KEY_FILE], "no temporary file left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).expect("key file").permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(SIGNING_KEY_FILE);
        fs::write(&path, b"too short").expect("write");
        let error = TokenAuthority::load_or_create(dir.path()).expect_err("wrong size");
        assert!(matches!(error, AuthError::KeyFileSize { size_bytes: 9, .. }), "{error:?}");
        assert!(error.to_string().contains(&path.display().to_string()), "{error}");
        assert_eq!(fs::read(&path).expect("still there"), b"too short");
    }

    #[test]
    fn the_debug_form_shows_no_secret() {
        let authority = authority();
        let debug = format!("{authority:?}");
        assert!(debug.contains(authority.key_id()), "{debug}");
        assert!(!debug.contains("SigningKey"), "{debug}");
        assert!(!debug.contains(&hex(&[7; 32])), "{debug}");
        assert!(!debug.contains("[7, 7"), "{debug}");
    }

    fn caller_with(roles: &[Role]) -> Caller {
        Caller::from(claims(roles))
    }

    #[test]
    fn a_caller_needs_the_role_a_call_asks_for() {
        let producer = caller_with(&[Role::Producer]);
        assert!(producer.has_role(Role::Producer));
        assert!(!producer.is_operator());
        assert!(producer.require_role(Role::Producer).is_ok());
        assert!(producer.require_any_role(&[Role::Buyer, Role::Producer]).is_ok());

        let denied = Status::from(producer.require_role(Role::Carrier).expect_err("not a carrier"));
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert_eq!(denied.message(), "this call needs the carrier role");
        let denied =
            Status::from(producer.require_any_role(&[Role::Buyer, Role::Recycler]).expect_err("neither"));
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert_eq!(denied.message(), "this call needs one of the roles buyer, recycler");

        let operator = caller_with(&[Role::Operator]);
        assert!(operator.is_operator());
        assert!(operator.require_role(Role::Producer).is_err(), "operators need the role too");
    }

    #[test]
    fn a_caller_acts_on_its_own_data_and_operators_on_anyone_s() {
        let producer = caller_with(&[Role::Producer]);
        let other = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
        assert!(producer.require_organization(producer.organization_id).is_ok());
        let denied = Status::from(producer.require_organization(other).expect_err("not its own"));
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert_eq!(
            denied.message(),
            format!(
                "organization {} may not act on the data of organization {other}",
                producer.organization_id
            )
        );
        assert!(caller_with(&[Role::Operator]).require_organization(other).is_ok());
    }

    #[test]
    fn revocations_are_shared_by_clones() {
        let revocations = Revocations::new();
        let clone = revocations.clone();
        let token_id = Uuid::from_u128(1);
        assert!(!revocations.is_revoked(token_id));
        clone.revoke(token_id);
        clone.revoke(token_id);
        assert!(revocations.is_revoked(token_id));
        assert_eq!(revocations.len(), 1);
    }

    fn limits(per_second: u32, burst: u32) -> RateLimits {
        RateLimits::new(
            NonZeroU32::new(per_second).expect("nonzero"),
            NonZeroU32::new(burst).expect("nonzero"),
        )
    }

    fn authenticator(rate_limits: RateLimits) -> (Authenticator, Revocations) {
        let revocations = Revocations::new();
        (Authenticator::new(authority(), revocations.clone(), rate_limits), revocations)
    }

    fn request(authorization: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            let value: MetadataValue<_> = value.parse().expect("ascii");
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// A token valid now by the real clock, as the interceptor reads it.
    fn live_token(roles: &[Role]) -> String {
        let now_s = unix_now_s();
        authority().issue(&Claims { issued_at_s: now_s, expires_at_s: now_s + DAY_S, ..claims(roles) })
    }

    fn refused(result: Result<Request<()>, Status>) -> Status {
        result.expect_err("refused")
    }

    #[test]
    fn the_interceptor_puts_the_caller_in_the_request() {
        let (mut authenticator, _) = authenticator(limits(100, 100));
        let token = live_token(&[Role::Producer]);
        let expected = caller_with(&[Role::Producer]);
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let request =
                authenticator.call(request(Some(&format!("{scheme} {token}")))).expect("authenticated");
            let found = caller(&request).expect("a caller");
            assert_eq!(found.organization_id, expected.organization_id);
            assert_eq!(found.roles, expected.roles);
            assert_eq!(found.token_id, expected.token_id);
            assert!(found.expires_at_s > unix_now_s());
        }
    }

    #[test]
    fn a_request_without_a_caller_is_unauthenticated() {
        let status = caller(&Request::new(())).expect_err("no interceptor ran");
        assert_eq!(status.code(), Code::Unauthenticated);
    }

    #[test]
    fn the_interceptor_refuses_missing_and_malformed_credentials_without_echoing_them() {
        let (mut authenticator, _) = authenticator(limits(100, 100));
        let token = live_token(&[Role::Producer]);
        let expired = authority().issue(&claims(&[Role::Producer]));
        let foreign = TokenAuthority::from_seed([9; 32])
            .issue(&Claims { expires_at_s: u64::MAX, ..claims(&[Role::Operator]) });
        let cases = [
            (None, "missing authorization"),
            (Some(format!("Basic {token}")), "must be `Bearer <token>`"),
            (Some(token.clone()), "must be `Bearer <token>`"),
            (Some("Bearer sekrit".to_owned()), "malformed token"),
            (Some(format!("Bearer {expired}")), "token expired at"),
            (Some(format!("Bearer {foreign}")), "signature does not verify"),
        ];
        for (authorization, expected) in cases {
            let status = refused(authenticator.call(request(authorization.as_deref())));
            assert_eq!(status.code(), Code::Unauthenticated, "{authorization:?}");
            assert!(status.message().contains(expected), "{authorization:?}: {}", status.message());
            assert!(!status.message().contains("sekrit"), "{}", status.message());
            for token in [&token, &expired, &foreign] {
                assert!(!status.message().contains(token.as_str()), "{}", status.message());
            }
        }
    }

    #[test]
    fn the_interceptor_refuses_a_revoked_token() {
        let (mut authenticator, revocations) = authenticator(limits(100, 100));
        let token = live_token(&[Role::Buyer]);
        assert!(authenticator.call(request(Some(&format!("Bearer {token}")))).is_ok());
        revocations.revoke(claims(&[]).token_id);
        let status = refused(authenticator.call(request(Some(&format!("Bearer {token}")))));
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(status.message().contains("revoked"), "{}", status.message());
    }

    /// The claims `token` is kept with in `authenticator`'s cache, if it is kept.
    fn kept(authenticator: &Authenticator, token: &str) -> Option<Claims> {
        authenticator.verified.claims.get(&<[u8; 32]>::from(Sha256::digest(token.as_bytes())))
    }

    #[test]
    fn a_verified_token_is_kept_by_its_digest_and_not_verified_again() {
        let (authenticator, _) = authenticator(limits(100, 100));
        let token = live_token(&[Role::Buyer]);
        let metadata = request(Some(&format!("Bearer {token}"))).metadata().clone();
        let first = authenticator.authenticate(&metadata, unix_now_s()).expect("verified");
        assert_eq!(kept(&authenticator, &token).map(Caller::from), Some(first.clone()));
        // A cache hit skips the signature: with a different key in the authority, a token
        // kept still authenticates, which only the cache can explain.
        let other_key =
            Authenticator { authority: TokenAuthority::from_seed([9; 32]), ..authenticator.clone() };
        assert_eq!(other_key.authenticate(&metadata, unix_now_s()).expect("from the cache"), first);
    }

    #[test]
    fn a_kept_token_is_refused_once_revoked() {
        let (authenticator, revocations) = authenticator(limits(100, 100));
        let token = live_token(&[Role::Buyer]);
        let metadata = request(Some(&format!("Bearer {token}"))).metadata().clone();
        authenticator.authenticate(&metadata, unix_now_s()).expect("verified");
        assert!(kept(&authenticator, &token).is_some());
        revocations.revoke(claims(&[]).token_id);
        let status = authenticator.authenticate(&metadata, unix_now_s()).expect_err("revoked");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(status.message().contains("revoked"), "{}", status.message());
    }

    #[test]
    fn a_kept_token_is_refused_from_its_expiry() {
        let (authenticator, _) = authenticator(limits(100, 100));
        let token = authority().issue(&claims(&[Role::Buyer]));
        let metadata = request(Some(&format!("Bearer {token}"))).metadata().clone();
        authenticator.authenticate(&metadata, NOW_S).expect("valid at NOW_S");
        assert!(kept(&authenticator, &token).is_some());
        for now_s in [NOW_S + DAY_S, NOW_S + 2 * DAY_S] {
            let status = authenticator.authenticate(&metadata, now_s).expect_err("expired");
            assert_eq!(status.code(), Code::Unauthenticated);
            assert!(status.message().contains("token expired at"), "{}", status.message());
        }
        assert!(kept(&authenticator, &token).is_none(), "dropped once seen expired");
    }

    #[test]
    fn a_refused_token_is_never_kept() {
        let (authenticator, _) = authenticator(limits(100, 100));
        let token = live_token(&[Role::Buyer]);
        let (body, signature) = token.rsplit_once('.').expect("three parts");
        let mut forged_signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        forged_signature[0] ^= 1;
        let forged = format!("{body}.{}", URL_SAFE_NO_PAD.encode(forged_signature));
        let foreign = TokenAuthority::from_seed([9; 32]).issue(&claims(&[Role::Operator]));
        let expired = authority().issue(&claims(&[Role::Buyer]));
        for refused in [&forged, &foreign, &expired, &"sekrit".to_owned()] {
            let metadata = request(Some(&format!("Bearer {refused}"))).metadata().clone();
            for _ in 0..2 {
                let status = authenticator.authenticate(&metadata, unix_now_s()).expect_err("refused");
                assert_eq!(status.code(), Code::Unauthenticated);
            }
            assert!(kept(&authenticator, refused).is_none());
        }
        assert!(authenticator.verified.is_empty());
    }

    #[test]
    fn the_cache_keeps_at_most_its_bound() {
        let bound = 16;
        let authenticator = Authenticator::with_verified_tokens(
            authority(),
            Revocations::new(),
            limits(100_000, 100_000),
            bound,
        );
        for index in 0..10 * bound {
            let token = authority().issue(&Claims {
                token_id: Uuid::from_u128(u128::from(index)),
                expires_at_s: u64::MAX,
                ..claims(&[Role::Buyer])
            });
            let metadata = request(Some(&format!("Bearer {token}"))).metadata().clone();
            authenticator.authenticate(&metadata, NOW_S).expect("valid");
            assert!(authenticator.verified.len() <= bound, "{} kept", authenticator.verified.len());
        }
        assert!(!authenticator.verified.is_empty());
    }

    #[test]
    fn the_interceptor_limits_each_organization_after_its_burst() {
        // One call a second: the bucket cannot refill during the test however slow the machine,
        // unless a whole second passes between two calls.
        let burst = 3;
        let (mut authenticator, _) = authenticator(limits(1, burst));
        let token = live_token(&[Role::Operator]);
        for _ in 0..burst {
            assert!(authenticator.call(request(Some(&format!("Bearer {token}")))).is_ok());
        }
        let status = refused(authenticator.call(request(Some(&format!("Bearer {token}")))));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            format!(
                "organization {} is over its rate limit of 1 calls per second",
                claims(&[]).organization_id
            )
        );

        // Another organization has its own bucket.
        let now_s = unix_now_s();
        let other = authority().issue(&Claims {
            organization_id: Uuid::from_u128(2),
            issued_at_s: now_s,
            expires_at_s: now_s + DAY_S,
            ..claims(&[Role::Buyer])
        });
        assert!(authenticator.call(request(Some(&format!("Bearer {other}")))).is_ok());
        assert_eq!(authenticator.rate_limits.organizations(), 2);
    }

    #[test]
    fn full_buckets_are_swept() {
        let rate_limits = limits(100_000, 1);
        for organization in 0..RATE_LIMIT_SWEEP_CALLS - 1 {
            let _ = rate_limits.check(Uuid::from_u128(u128::from(organization)));
        }
        assert_eq!(rate_limits.organizations(), usize::try_from(RATE_LIMIT_SWEEP_CALLS - 1).expect("fits"));
        // The sweep runs before the call that makes the count a multiple; it keeps only the
        // buckets not yet refilled, and at 100,000 a second every bucket of a burst of one
        // refills within 10 microseconds: so after it, far fewer remain.
        let _ = rate_limits.check(Uuid::from_u128(u128::MAX));
        assert!(rate_limits.organizations() < usize::try_from(RATE_LIMIT_SWEEP_CALLS).expect("fits"));
    }
}
