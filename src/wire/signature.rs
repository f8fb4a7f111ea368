//! Signed worker requests (docs/SECURITY.md, "Signed requests"): the profile of HTTP Message
//! Signatures (RFC 9421) every worker-authenticated HTTP call carries, with the body's
//! `Content-Digest` (RFC 9530), and the worker channel's challenge proof. Both sides build the
//! same bytes here; the orchestrator adds the clock window and the nonce memory.
//!
//! One profile, nothing negotiable: the covered components are exactly
//! `("@method" "@target-uri" "content-digest")`, the parameters exactly `created`, `nonce`,
//! `keyid` (the worker id), `alg="ed25519"` and `tag="basis"`, in that order. `@target-uri` is
//! the URL the worker called, so its scheme, host and port (the orchestrator's origin) are
//! signed: a signature made for one orchestrator is worthless at another.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::{DeviceKey, DevicePublicKey, WorkerId};

pub const SIGNATURE_INPUT_HEADER: &str = "signature-input";
pub const SIGNATURE_HEADER: &str = "signature";
pub const CONTENT_DIGEST_HEADER: &str = "content-digest";
/// The label of the signature by the key the request is made with.
pub const LABEL: &str = "basis";
/// The label of the second signature a key rotation carries: by the key being replaced.
pub const PREVIOUS_LABEL: &str = "previous";
/// The covered components, verbatim.
pub const COVERED: &str = r#"("@method" "@target-uri" "content-digest")"#;
/// A signature's `created` may differ from the verifier's clock by at most this much.
pub const MAX_SKEW_S: u64 = 300;
/// The longest nonce accepted (ours are 22 characters).
pub const MAX_NONCE_LEN: usize = 64;
/// What the worker channel's proof signs, before the origin, the challenge and the worker id.
pub const CHANNEL_CONTEXT: &str = "basis-channel/1";

/// `sha-256=:<base64 of sha256(body)>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// 16 random bytes, base64url: a request's nonce and a channel's challenge.
pub fn nonce() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The signature parameters after the covered components, as they appear in
/// `Signature-Input` and as the `@signature-params` line.
pub fn params(keyid: &WorkerId, created: u64, nonce: &str) -> String {
    format!(
        r#"{COVERED};created={created};nonce="{nonce}";keyid="{keyid}";alg="ed25519";tag="basis""#
    )
}

/// The signature base (RFC 9421 section 2.5): one line per covered component, then the
/// parameters; `\n` between lines, none at the end.
pub fn signature_base(method: &str, target_uri: &str, digest: &str, params: &str) -> String {
    format!(
        "\"@method\": {method}\n\"@target-uri\": {target_uri}\n\"content-digest\": {digest}\n\"@signature-params\": {params}"
    )
}

/// The headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub content_digest: String,
    pub signature_input: String,
    pub signature: String,
}

/// One signature of a request, before it is joined with others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub label: &'static str,
    pub params: String,
    pub signature: [u8; 64],
}

/// Signs `method target_uri` with `body` as worker `keyid`, under `label`.
pub fn sign_member(
    key: &DeviceKey,
    label: &'static str,
    keyid: &WorkerId,
    method: &str,
    target_uri: &str,
    body: &[u8],
    created: u64,
) -> Member {
    let params = params(keyid, created, &nonce());
    let base = signature_base(method, target_uri, &content_digest(body), &params);
    Member {
        label,
        signature: key.sign(base.as_bytes()),
        params,
    }
}

/// The three headers carrying `members` (usually one; two for a rotation).
pub fn headers(body: &[u8], members: &[Member]) -> SignedHeaders {
    let join = |f: &dyn Fn(&Member) -> String| members.iter().map(f).collect::<Vec<_>>().join(", ");
    SignedHeaders {
        content_digest: content_digest(body),
        signature_input: join(&|m| format!("{}={}", m.label, m.params)),
        signature: join(&|m| format!("{}=:{}:", m.label, STANDARD.encode(m.signature))),
    }
}

/// A signature as received: its parameters verbatim and what they say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSignature {
    pub params: String,
    pub keyid: WorkerId,
    pub created: u64,
    pub nonce: String,
    pub signature: Vec<u8>,
}

/// Why a request's signature headers cannot be read. Never carries a header's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("Signature-Input has no `{0}` signature")]
    Missing(&'static str),
    #[error("the `{0}` signature does not follow basis's profile: {1}")]
    Profile(&'static str, &'static str),
}

/// The members of a Structured Fields dictionary as `(label, value)`, split at top-level
/// commas. Our values hold no commas inside strings (worker ids, nonces and base64 have none),
/// and a value that does is refused by the strict parse of [`received`].
fn members(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header
        .split(',')
        .filter_map(|m| m.trim().split_once('='))
        .map(|(label, value)| (label.trim(), value.trim()))
}

/// Whether a `Signature-Input` header value has a member labelled `label` (well formed or not).
pub fn has_member(signature_input: &str, label: &str) -> bool {
    members(signature_input).any(|(l, _)| l == label)
}

/// Reads the `label` signature from the `Signature-Input` and `Signature` header values.
pub fn received(
    label: &'static str,
    signature_input: &str,
    signature: &str,
) -> Result<ReceivedSignature, SignatureError> {
    let params = members(signature_input)
        .find(|(l, _)| *l == label)
        .map(|(_, v)| v)
        .ok_or(SignatureError::Missing(label))?;
    let bad = |why| SignatureError::Profile(label, why);
    let rest = params.strip_prefix(COVERED).ok_or_else(|| {
        bad("it must cover exactly (\"@method\" \"@target-uri\" \"content-digest\")")
    })?;
    if !rest.starts_with(';') {
        return Err(bad(
            "the parameters must follow the covered components directly",
        ));
    }
    let mut fields = rest.split(';').skip(1);
    let mut next = |name: &str| {
        fields
            .next()
            .and_then(|f| f.strip_prefix(name))
            .and_then(|f| f.strip_prefix('='))
    };
    let created = next("created")
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| bad("created must come first, as unix seconds"))?;
    let quoted = |v: Option<&str>| {
        v.and_then(|v| v.strip_prefix('"'))
            .and_then(|v| v.strip_suffix('"'))
            .map(str::to_owned)
    };
    let nonce = quoted(next("nonce"))
        .filter(|n| {
            !n.is_empty()
                && n.len() <= MAX_NONCE_LEN
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or_else(|| bad("nonce must follow created: up to 64 base64url characters"))?;
    let keyid = quoted(next("keyid"))
        .and_then(|k| WorkerId::parse(&k).ok())
        .ok_or_else(|| bad("keyid must follow nonce: the worker id"))?;
    if quoted(next("alg")).as_deref() != Some("ed25519") {
        return Err(bad("alg must follow keyid and be \"ed25519\""));
    }
    if quoted(next("tag")).as_deref() != Some("basis") {
        return Err(bad("tag must follow alg and be \"basis\""));
    }
    if fields.next().is_some() {
        return Err(bad("no parameter may follow tag"));
    }
    let signature = members(signature)
        .find(|(l, _)| *l == label)
        .and_then(|(_, v)| v.strip_prefix(':')?.strip_suffix(':').map(str::to_owned))
        .and_then(|b| STANDARD.decode(b).ok())
        .filter(|s| s.len() == 64)
        .ok_or_else(|| bad("Signature must hold it as :base64 of 64 bytes:"))?;
    Ok(ReceivedSignature {
        params: params.to_owned(),
        keyid,
        created,
        nonce,
        signature,
    })
}

impl ReceivedSignature {
    /// Whether `key` signed `method target_uri` with a body whose digest is `digest`.
    pub fn verifies(
        &self,
        key: &DevicePublicKey,
        method: &str,
        target_uri: &str,
        digest: &str,
    ) -> bool {
        let base = signature_base(method, target_uri, digest, &self.params);
        key.verify(base.as_bytes(), &self.signature)
    }

    /// Whether `created` is within [`MAX_SKEW_S`] of `now` (unix seconds).
    pub fn fresh(&self, now: u64) -> bool {
        self.created.abs_diff(now) <= MAX_SKEW_S
    }
}

/// The bytes the worker signs to open the channel: the context, the orchestrator's origin as
/// the worker dialled it, the orchestrator's one-time challenge and the worker id.
pub fn channel_message(origin: &str, challenge: &str, worker_id: &WorkerId) -> Vec<u8> {
    format!("{CHANNEL_CONTEXT}\norigin: {origin}\nchallenge: {challenge}\nworker: {worker_id}")
        .into_bytes()
}

/// base64 of `key`'s signature over [`channel_message`].
pub fn channel_proof(
    key: &DeviceKey,
    origin: &str,
    challenge: &str,
    worker_id: &WorkerId,
) -> String {
    STANDARD.encode(key.sign(&channel_message(origin, challenge, worker_id)))
}

/// Whether `proof` (base64) is `key`'s signature over [`channel_message`].
pub fn channel_proof_verifies(
    key: &DevicePublicKey,
    origin: &str,
    challenge: &str,
    worker_id: &WorkerId,
    proof: &str,
) -> bool {
    STANDARD
        .decode(proof)
        .is_ok_and(|sig| key.verify(&channel_message(origin, challenge, worker_id), &sig))
}

/// A URL's origin as both sides write it: `scheme://host[:port]` plus the path prefix, without
/// the trailing `/` (`https://orch.example`, `http://127.0.0.1:8080/basis`). `ws`/`wss` count as
/// `http`/`https`.
pub fn origin_of(url: &url::Url) -> String {
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        other => other,
    };
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    format!("{scheme}://{host}{port}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_member_finds_labels_at_the_top_level_only() {
        let header = r#"basis=("@method");created=1, previous=("@method");created=2"#;
        assert!(has_member(header, "basis"));
        assert!(has_member(header, "previous"));
        assert!(!has_member(header, "created"));
        assert!(!has_member("", "basis"));
    }

    fn id() -> WorkerId {
        WorkerId::parse("gpu-1").unwrap()
    }

    #[test]
    fn a_signed_request_verifies_and_nothing_else_does() {
        let key = DeviceKey::generate();
        let body = br#"{"worker_id":"gpu-1"}"#;
        let uri = "https://orch.example/api/tasks/t-1/claim";
        let m = sign_member(&key, LABEL, &id(), "POST", uri, body, 1_000);
        let h = headers(body, &[m]);
        let got = received(LABEL, &h.signature_input, &h.signature).unwrap();
        assert_eq!(got.keyid, id());
        assert_eq!(got.created, 1_000);
        let digest = content_digest(body);
        assert!(got.verifies(&key.public(), "POST", uri, &digest));
        // another method, origin, path, body or key: refused
        assert!(!got.verifies(&key.public(), "GET", uri, &digest));
        assert!(!got.verifies(
            &key.public(),
            "POST",
            "https://evil.example/api/tasks/t-1/claim",
            &digest
        ));
        assert!(!got.verifies(
            &key.public(),
            "POST",
            "https://orch.example/api/tasks/t-2/claim",
            &digest
        ));
        assert!(!got.verifies(&key.public(), "POST", uri, &content_digest(b"{}")));
        assert!(!got.verifies(&DeviceKey::generate().public(), "POST", uri, &digest));
        assert!(got.fresh(1_300) && got.fresh(700) && !got.fresh(1_301) && !got.fresh(699));
    }

    #[test]
    fn the_base_follows_rfc_9421() {
        let p = params(&id(), 1_618_884_473, "abc");
        assert_eq!(
            p,
            r#"("@method" "@target-uri" "content-digest");created=1618884473;nonce="abc";keyid="gpu-1";alg="ed25519";tag="basis""#
        );
        assert_eq!(
            signature_base("POST", "https://o.example/x", "sha-256=:AA==:", &p),
            format!(
                "\"@method\": POST\n\"@target-uri\": https://o.example/x\n\"content-digest\": sha-256=:AA==:\n\"@signature-params\": {p}"
            )
        );
        assert_eq!(
            content_digest(b""),
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
        );
    }

    #[test]
    fn two_members_are_read_by_label() {
        let (new, old) = (DeviceKey::generate(), DeviceKey::generate());
        let uri = "http://127.0.0.1:9/api/workers/register";
        let a = sign_member(&new, LABEL, &id(), "POST", uri, b"x", 5);
        let b = sign_member(&old, PREVIOUS_LABEL, &id(), "POST", uri, b"x", 5);
        let h = headers(b"x", &[a, b]);
        let d = content_digest(b"x");
        let got = received(LABEL, &h.signature_input, &h.signature).unwrap();
        assert!(got.verifies(&new.public(), "POST", uri, &d));
        let prev = received(PREVIOUS_LABEL, &h.signature_input, &h.signature).unwrap();
        assert!(prev.verifies(&old.public(), "POST", uri, &d));
        assert!(!prev.verifies(&new.public(), "POST", uri, &d));
    }

    #[test]
    fn off_profile_inputs_are_refused() {
        let sig = format!("basis=:{}:", STANDARD.encode([0u8; 64]));
        for input in [
            "",
            r#"other=("@method");created=1"#,
            r#"basis=("@method" "@target-uri");created=1;nonce="n";keyid="gpu-1";alg="ed25519";tag="basis""#,
            r#"basis=("@method" "@target-uri" "content-digest");nonce="n";created=1;keyid="gpu-1";alg="ed25519";tag="basis""#,
            r#"basis=("@method" "@target-uri" "content-digest");created=1;nonce="n";keyid="GPU 1";alg="ed25519";tag="basis""#,
            r#"basis=("@method" "@target-uri" "content-digest");created=1;nonce="n";keyid="gpu-1";alg="rsa-pss-sha512";tag="basis""#,
            r#"basis=("@method" "@target-uri" "content-digest");created=1;nonce="n";keyid="gpu-1";alg="ed25519";tag="basis";expires=2"#,
            r#"basis=("@method" "@target-uri" "content-digest")x;created=1;nonce="n";keyid="gpu-1";alg="ed25519";tag="basis""#,
        ] {
            assert!(received(LABEL, input, &sig).is_err(), "{input}");
        }
        let good = params(&id(), 1, "n");
        let input = format!("basis={good}");
        assert!(received(LABEL, &input, &sig).is_ok());
        assert!(received(LABEL, &input, "basis=:AAAA:").is_err());
    }

    #[test]
    fn the_channel_proof_binds_origin_challenge_and_worker() {
        let key = DeviceKey::generate();
        let proof = channel_proof(&key, "https://a.example", "c1", &id());
        let public = key.public();
        assert!(channel_proof_verifies(
            &public,
            "https://a.example",
            "c1",
            &id(),
            &proof
        ));
        assert!(!channel_proof_verifies(
            &public,
            "https://b.example",
            "c1",
            &id(),
            &proof
        ));
        assert!(!channel_proof_verifies(
            &public,
            "https://a.example",
            "c2",
            &id(),
            &proof
        ));
        let other = WorkerId::parse("gpu-2").unwrap();
        assert!(!channel_proof_verifies(
            &public,
            "https://a.example",
            "c1",
            &other,
            &proof
        ));
    }

    #[test]
    fn origins_are_written_one_way() {
        let o = |s: &str| origin_of(&url::Url::parse(s).unwrap());
        assert_eq!(o("https://Orch.Example:443/"), "https://orch.example");
        assert_eq!(
            o("http://127.0.0.1:8080/api/tasks/x"),
            "http://127.0.0.1:8080/api/tasks/x"
        );
        assert_eq!(
            o("ws://127.0.0.1:8080/basis/"),
            "http://127.0.0.1:8080/basis"
        );
        assert_eq!(o("wss://h.example/"), "https://h.example");
    }
}
