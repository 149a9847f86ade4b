//! PEM and JWK: `keys::parse_pems` (the `SIGNING_KEYS` secret), `keys::parse_public_keys` and
//! `keys::from_jwk` (an app's `certificate`, registered `jwks`, actor keys). Generated DER is
//! built from the structures these parsers walk (PKCS#8, PKCS#1, SEC1, SubjectPublicKeyInfo,
//! X.509), with every length, tag and integer free to be wrong.

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use edge_oauth::core::keys::{
    from_jwk, member, parse_pems, parse_public_keys, Alg, PublicKey, MIN_RSA_BITS,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

use crate::strategies::{json, text};

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const ID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OIDS: &[&[u8]] = &[
    RSA_ENCRYPTION,
    ID_EC_PUBLIC_KEY,
    PRIME256V1,
    SECP384R1,
    ED25519,
    &[],
];

/// One DER element (X.690 definite length).
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = contents.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

fn pem_block(tag: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {tag}-----\n{}\n-----END {tag}-----\n",
        lines.join("\n")
    )
}

/// An INTEGER's contents: empty, zero, a sign byte, short, or long enough for a 2048-bit key.
fn integer() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        1 => Just(vec![0]),
        1 => Just(vec![1, 0, 1]),
        1 => vec(any::<u8>(), 1..8),
        1 => vec(any::<u8>(), 250..260),
        1 => (vec(any::<u8>(), 256), any::<bool>()).prop_map(|(mut n, sign)| {
            n[0] |= 0x80;
            if sign {
                n.insert(0, 0);
            }
            n
        }),
    ]
    .boxed()
}

fn oid() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => select(OIDS).prop_map(<[u8]>::to_vec),
        1 => vec(any::<u8>(), 0..10),
    ]
    .boxed()
}

/// An AlgorithmIdentifier: an OID and parameters (NULL, a curve OID, nothing, anything).
fn algorithm() -> BoxedStrategy<Vec<u8>> {
    let params = prop_oneof![
        Just(tlv(NULL, &[])),
        Just(tlv(OID, PRIME256V1)),
        Just(tlv(OID, SECP384R1)),
        Just(Vec::new()),
        vec(any::<u8>(), 0..6),
    ];
    (oid(), params)
        .prop_map(|(o, p)| seq(&[tlv(OID, &o), p]))
        .boxed()
}

/// SubjectPublicKeyInfo around an RSA key, an EC point or random bits.
fn spki() -> BoxedStrategy<Vec<u8>> {
    let rsa = (integer(), integer()).prop_map(|(n, e)| seq(&[tlv(INTEGER, &n), tlv(INTEGER, &e)]));
    let point = prop_oneof![
        (vec(any::<u8>(), 64)).prop_map(|p| [&[4u8][..], &p].concat()),
        vec(any::<u8>(), 0..70),
    ];
    let key = prop_oneof![rsa, point];
    let unused = prop_oneof![4 => Just(0u8), 1 => any::<u8>()];
    (algorithm(), unused, key)
        .prop_map(|(a, u, k)| seq(&[a, tlv(BIT_STRING, &[&[u][..], &k].concat())]))
        .boxed()
}

/// An X.509 certificate shape around a SubjectPublicKeyInfo (nothing else is read).
fn certificate() -> BoxedStrategy<Vec<u8>> {
    let version = prop_oneof![Just(Vec::new()), Just(tlv(0xa0, &tlv(INTEGER, &[2])))];
    let any_seq = vec(any::<u8>(), 0..8).prop_map(|b| tlv(SEQUENCE, &b));
    (
        version,
        integer(),
        vec(any_seq, 2..6),
        spki(),
        vec(any::<u8>(), 0..16),
    )
        .prop_map(|(v, serial, fields, spki, sig)| {
            let tbs = seq(&[v, tlv(INTEGER, &serial), fields.concat(), spki]);
            seq(&[tbs, seq(&[tlv(OID, RSA_ENCRYPTION)]), tlv(BIT_STRING, &sig)])
        })
        .boxed()
}

/// PKCS#1 RSAPrivateKey shapes (version and eight integers, give or take).
fn pkcs1() -> BoxedStrategy<Vec<u8>> {
    vec(integer(), 7..11)
        .prop_map(|ints| seq(&ints.iter().map(|i| tlv(INTEGER, i)).collect::<Vec<_>>()))
        .boxed()
}

/// SEC1 ECPrivateKey shapes.
fn sec1() -> BoxedStrategy<Vec<u8>> {
    let version = prop_oneof![Just(vec![1u8]), integer()];
    let key = prop_oneof![vec(any::<u8>(), 32), vec(any::<u8>(), 0..40)];
    let params = prop_oneof![
        Just(Vec::new()),
        oid().prop_map(|o| tlv(0xa0, &tlv(OID, &o))),
        vec(any::<u8>(), 0..6).prop_map(|b| tlv(0xa0, &b)),
    ];
    (version, key, params)
        .prop_map(|(v, k, p)| seq(&[tlv(INTEGER, &v), tlv(OCTET_STRING, &k), p]))
        .boxed()
}

/// PKCS#8 PrivateKeyInfo around any of the above.
fn pkcs8() -> BoxedStrategy<Vec<u8>> {
    let inner = prop_oneof![pkcs1(), sec1(), vec(any::<u8>(), 0..40)];
    (integer(), algorithm(), inner)
        .prop_map(|(v, a, k)| seq(&[tlv(INTEGER, &v), a, tlv(OCTET_STRING, &k)]))
        .boxed()
}

/// DER with a byte changed, cut short or extended.
fn mutated(der: Vec<u8>) -> BoxedStrategy<Vec<u8>> {
    let len = der.len().max(1);
    prop_oneof![
        Just(der.clone()),
        (0..len, any::<u8>()).prop_map({
            let der = der.clone();
            move |(i, b)| {
                let mut d = der.clone();
                if let Some(x) = d.get_mut(i) {
                    *x = b;
                }
                d
            }
        }),
        (0..len).prop_map({
            let der = der.clone();
            move |n| der[..n.min(der.len())].to_vec()
        }),
        vec(any::<u8>(), 1..4).prop_map(move |t| [der.clone(), t].concat()),
    ]
    .boxed()
}

struct Real {
    rsa_pkcs8: Vec<u8>,
    rsa_pkcs1: Vec<u8>,
    rsa_spki: Vec<u8>,
    ec_pkcs8: Vec<u8>,
    ec_sec1: Vec<u8>,
    ec_spki: Vec<u8>,
}

/// One real RSA and one real P-256 key, in each form the parsers take.
fn real() -> &'static Real {
    static REAL: OnceLock<Real> = OnceLock::new();
    REAL.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
        let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let ec = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
        Real {
            rsa_pkcs8: rsa.to_pkcs8_der().unwrap().as_bytes().to_vec(),
            rsa_pkcs1: rsa.to_pkcs1_der().unwrap().as_bytes().to_vec(),
            rsa_spki: rsa
                .to_public_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes()
                .to_vec(),
            ec_pkcs8: ec.to_pkcs8_der().unwrap().as_bytes().to_vec(),
            // RustCrypto writes SEC1 without the curve, which the parser refuses (documented):
            // RFC 5915 ECPrivateKey { 1, key, [0] prime256v1 }.
            ec_sec1: seq(&[
                tlv(INTEGER, &[1]),
                tlv(OCTET_STRING, &ec.to_bytes()),
                tlv(0xa0, &tlv(OID, PRIME256V1)),
            ]),
            ec_spki: ec
                .public_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes()
                .to_vec(),
        }
    })
}

fn private_tag() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(&["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PUBLIC KEY", "CERTIFICATE"][..])
            .prop_map(str::to_owned),
        1 => "[A-Z ]{0,12}",
    ]
    .boxed()
}

fn public_tag() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(&["PUBLIC KEY", "CERTIFICATE", "PRIVATE KEY", "RSA PUBLIC KEY"][..]).prop_map(str::to_owned),
        1 => "[A-Z ]{0,12}",
    ]
    .boxed()
}

/// Text around PEM: blocks joined by newlines or literal `\n`, unterminated, with junk.
fn pem_text(blocks: Vec<String>, style: u8, junk: String) -> String {
    let joined = blocks.concat();
    match style % 5 {
        0 => joined,
        1 => joined.replace('\n', "\\n"),
        2 => joined.replace("-----END", "-----EN"),
        3 => format!("{junk}{joined}"),
        _ => format!("{joined}{junk}"),
    }
}

/// What every accepted public key satisfies: a supported algorithm with its JWK members, an
/// RSA modulus of at least 2048 bits, a P-256 point of two 32-byte coordinates, nothing private.
fn check_public(key: &PublicKey) -> Result<(), TestCaseError> {
    let obj = key.jwk.as_object().unwrap();
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        prop_assert!(!obj.contains_key(private));
    }
    match key.alg {
        Alg::Rs256 => {
            prop_assert_eq!(obj.get("kty"), Some(&json!("RSA")));
            let n = member(key, "n").unwrap();
            prop_assert!(!n.is_empty(), "empty modulus accepted");
            let bits = n.len() * 8 - n[0].leading_zeros() as usize;
            prop_assert!(bits >= MIN_RSA_BITS, "{bits}-bit modulus accepted");
            prop_assert!(!member(key, "e").unwrap().is_empty());
        }
        Alg::Es256 => {
            prop_assert_eq!(obj.get("kty"), Some(&json!("EC")));
            prop_assert_eq!(obj.get("crv"), Some(&json!("P-256")));
            prop_assert_eq!(member(key, "x").unwrap().len(), 32);
            prop_assert_eq!(member(key, "y").unwrap().len(), 32);
        }
    }
    Ok(())
}

/// JWKs near valid ones: real members, wrong lengths, private members, odd types.
fn jwk() -> BoxedStrategy<Value> {
    let b64 = |v: Vec<u8>| Value::from(URL_SAFE_NO_PAD.encode(v));
    let member_value = prop_oneof![
        integer().prop_map(b64),
        vec(any::<u8>(), 31..34).prop_map(b64),
        json(),
        Just(Value::from("AQAB")),
        Just(Value::from("")),
        Just(Value::from("!!")),
    ];
    let names = select(
        &[
            "kty", "crv", "n", "e", "x", "y", "alg", "kid", "d", "use", "k",
        ][..],
    );
    let kty = select(&["RSA", "EC", "oct", "OKP", ""][..]);
    let crv = select(&["P-256", "P-384", "Ed25519"][..]);
    let alg = select(&["RS256", "ES256", "HS256", "none"][..]);
    (
        kty,
        crv,
        proptest::option::of(alg),
        proptest::collection::btree_map(names, member_value, 0..6),
    )
        .prop_map(|(kty, crv, alg, members)| {
            let mut obj = serde_json::Map::new();
            obj.insert("kty".into(), kty.into());
            obj.insert("crv".into(), crv.into());
            if let Some(a) = alg {
                obj.insert("alg".into(), a.into());
            }
            for (k, v) in members {
                obj.insert(k.into(), v);
            }
            Value::Object(obj)
        })
        .boxed()
}

#[test]
fn regression_an_empty_rsa_modulus_is_refused() {
    // SubjectPublicKeyInfo { rsaEncryption NULL, BIT STRING { SEQUENCE { INTEGER (empty),
    // INTEGER 0x010001 } } }, as a PUBLIC KEY (the property first found it inside a
    // CERTIFICATE: `public_keys_from_any_pem_keep_their_invariants`). The modulus's bit count
    // underflowed: a panic in debug builds, and in release (no overflow checks) a huge count,
    // so the empty key passed as "at least 2048 bits".
    let der = seq(&[
        seq(&[tlv(OID, RSA_ENCRYPTION), tlv(NULL, &[])]),
        tlv(
            BIT_STRING,
            &[
                &[0u8][..],
                &seq(&[tlv(INTEGER, &[]), tlv(INTEGER, &[1, 0, 1])]),
            ]
            .concat(),
        ),
    ]);
    let e = parse_public_keys(&pem_block("PUBLIC KEY", &der)).unwrap_err();
    assert!(e.0.contains("bits"), "{}", e.0);
}

proptest! {
    #![proptest_config(crate::config(512))]

    #[test]
    fn signing_keys_from_any_pem_keep_their_invariants(
        blocks in vec((private_tag(), prop_oneof![pkcs8(), pkcs1(), sec1(), vec(any::<u8>(), 0..64)]), 0..3),
        style in any::<u8>(),
        junk in text(),
    ) {
        let blocks: Vec<String> = blocks.iter().map(|(t, d)| pem_block(t, d)).collect();
        let text = pem_text(blocks, style, junk);
        if let Ok(keys) = parse_pems(&text) {
            prop_assert!(!keys.is_empty());
            for k in keys {
                prop_assert_eq!(k.pkcs8_der.first(), Some(&0x30));
            }
        }
    }

    #[test]
    fn real_signing_keys_survive_only_intact(
        which in 0usize..3,
        mutation in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        literal_newlines in any::<bool>(),
    ) {
        let r = real();
        let (tag, der, alg) = [
            ("PRIVATE KEY", &r.rsa_pkcs8, Alg::Rs256),
            ("RSA PRIVATE KEY", &r.rsa_pkcs1, Alg::Rs256),
            ("EC PRIVATE KEY", &r.ec_sec1, Alg::Es256),
        ][which];
        let mut pem = pem_block(tag, der);
        if literal_newlines {
            pem = pem.replace('\n', "\\n");
        }
        let keys = parse_pems(&pem).unwrap();
        prop_assert_eq!(keys.len(), 1);
        prop_assert_eq!(keys[0].alg, alg);
        if tag == "PRIVATE KEY" {
            prop_assert_eq!(&keys[0].pkcs8_der, der);
        }
        // A changed byte never panics.
        let mut bad = der.clone();
        let i = mutation.index(bad.len());
        bad[i] ^= byte | 1;
        let _ = parse_pems(&pem_block(tag, &bad));
        let _ = parse_pems(&pem_block(tag, &der[..i]));
    }

    #[test]
    fn public_keys_from_any_pem_keep_their_invariants(
        blocks in vec((public_tag(), prop_oneof![spki(), certificate(), vec(any::<u8>(), 0..64)]), 0..3),
        style in any::<u8>(),
        junk in text(),
    ) {
        let blocks: Vec<String> = blocks.iter().map(|(t, d)| pem_block(t, d)).collect();
        let text = pem_text(blocks, style, junk);
        if let Ok(keys) = parse_public_keys(&text) {
            prop_assert!(!keys.is_empty());
            for k in &keys {
                check_public(k)?;
            }
        }
    }

    #[test]
    fn real_public_keys_survive_mutation_without_a_panic(
        der in prop_oneof![
            Just(()).prop_flat_map(|_| mutated(real().rsa_spki.clone())),
            Just(()).prop_flat_map(|_| mutated(real().ec_spki.clone())),
            Just(()).prop_flat_map(|_| mutated(real().rsa_pkcs8.clone())),
            Just(()).prop_flat_map(|_| mutated(real().ec_pkcs8.clone())),
        ],
        tag in public_tag(),
    ) {
        if let Ok(keys) = parse_public_keys(&pem_block(&tag, &der)) {
            for k in &keys {
                check_public(k)?;
            }
        }
    }

    /// A key read from PEM, written as its JWK, a JWK Set, or the JWK with literal `\n`
    /// around it, reads back as the same key.
    #[test]
    fn public_keys_round_trip_through_jwk(ec in any::<bool>(), kid in proptest::option::of("[a-z0-9]{1,8}"), set in any::<bool>()) {
        let der = if ec { &real().ec_spki } else { &real().rsa_spki };
        let from_pem = parse_public_keys(&pem_block("PUBLIC KEY", der)).unwrap();
        prop_assert_eq!(from_pem.len(), 1);
        let key = &from_pem[0];
        check_public(key)?;
        let mut jwk = key.jwk.clone();
        if let Some(k) = &kid {
            jwk["kid"] = Value::from(k.as_str());
        }
        jwk["alg"] = Value::from(key.alg.name());
        let again = from_jwk(&jwk).unwrap();
        prop_assert_eq!(&again.jwk, &key.jwk);
        prop_assert_eq!(again.alg, key.alg);
        prop_assert_eq!(&again.kid, &kid);
        let text = if set { json!({"keys": [jwk]}).to_string() } else { jwk.to_string() };
        let parsed = parse_public_keys(&format!("  {text}\n")).unwrap();
        prop_assert_eq!(&parsed[0].jwk, &key.jwk);
    }

    #[test]
    fn any_jwk_is_read_or_refused(jwk in prop_oneof![jwk(), json()], as_set in any::<bool>()) {
        if let Ok(k) = from_jwk(&jwk) {
            check_public(&k)?;
            if let Some(alg) = jwk.get("alg").and_then(Value::as_str) {
                prop_assert_eq!(alg, k.alg.name());
            }
        }
        let text = if as_set { json!({"keys": [jwk]}).to_string() } else { jwk.to_string() };
        if let Ok(keys) = parse_public_keys(&text) {
            for k in &keys {
                check_public(k)?;
            }
        }
    }

    #[test]
    fn any_text_is_refused_without_a_panic(t in text()) {
        let _ = parse_pems(&t);
        let _ = parse_public_keys(&t);
        let _ = parse_pems(&format!("-----BEGIN PRIVATE KEY-----\n{t}\n-----END PRIVATE KEY-----"));
        let _ = parse_public_keys(&format!("-----BEGIN PUBLIC KEY-----\n{t}\n-----END PUBLIC KEY-----"));
    }
}
