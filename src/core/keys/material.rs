//! `SIGNING_KEYS` PEM blocks to PKCS#8 DER, the one form both signing backends import
//! (WebCrypto's `importKey("pkcs8")` on the edge, RustCrypto natively).
//!
//! Only as much DER as that needs is read here: the structure of each key is checked, so that a
//! body under the wrong label or a key of an unsupported type is refused the same way on both
//! targets, before any backend sees it.

use super::{Alg, KeyError};

/// One private key of `SIGNING_KEYS`, as RFC 5208 PKCS#8 DER, and the algorithm it signs with.
pub struct KeyMaterial {
    pub alg: Alg,
    pub pkcs8_der: Vec<u8>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMaterial({}, [redacted])", self.alg.name())
    }
}

pub(super) const INTEGER: u8 = 0x02;
pub(super) const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
pub(super) const OID: u8 = 0x06;
pub(super) const SEQUENCE: u8 = 0x30;
/// `[0]` of RFC 5915 ECPrivateKey: the curve.
const EC_PARAMETERS: u8 = 0xa0;

/// 1.2.840.113549.1.1.1 (RFC 8017 Appendix C).
pub(super) const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.2.840.10045.2.1 (RFC 5480 §2.1.1).
pub(super) const ID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7, P-256 (RFC 5480 §2.1.1.1).
pub(super) const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Parses concatenated PEM blocks, newest key first. Literal `\n` sequences are accepted for
/// newlines, as dotenv files and dashboard secrets often carry them. Accepted: PKCS#8
/// `PRIVATE KEY` (RSA or EC P-256), PKCS#1 `RSA PRIVATE KEY` and SEC1 `EC PRIVATE KEY` (P-256);
/// the last two are wrapped into PKCS#8.
pub fn parse_pems(pems: &str) -> Result<Vec<KeyMaterial>, KeyError> {
    if pems.trim().is_empty() {
        return Err(KeyError("SIGNING_KEYS is not set".into()));
    }
    let text = pems.replace("\\n", "\n");
    let blocks = pem::parse_many(&text)
        .map_err(|e| KeyError(format!("SIGNING_KEYS is not valid PEM: {e}")))?;
    // parse_many stops quietly at a block with no END line: a truncated key must not vanish.
    if blocks.len() != text.matches("-----BEGIN ").count() {
        return Err(KeyError(
            "SIGNING_KEYS has a PEM block with no END line".into(),
        ));
    }
    let keys = blocks
        .iter()
        .enumerate()
        .map(|(i, block)| {
            material(block.tag(), block.contents())
                .map_err(|why| KeyError(format!("key {i}: {why}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(KeyError("SIGNING_KEYS holds no PEM private key".into()));
    }
    Ok(keys)
}

fn material(tag: &str, der: &[u8]) -> Result<KeyMaterial, &'static str> {
    match tag {
        "PRIVATE KEY" => pkcs8_alg(der).map(|alg| KeyMaterial {
            alg,
            pkcs8_der: der.to_vec(),
        }),
        "RSA PRIVATE KEY" if is_rsa_private_key(der) => Ok(KeyMaterial {
            alg: Alg::Rs256,
            pkcs8_der: wrap_pkcs1(der),
        }),
        "RSA PRIVATE KEY" => Err("not a PKCS#1 RSA private key"),
        "EC PRIVATE KEY" => match ec_private_key_curve(der) {
            Some(Some(PRIME256V1)) => Ok(KeyMaterial {
                alg: Alg::Es256,
                pkcs8_der: wrap_sec1(der),
            }),
            // Without its curve, a 32-byte key could be on any 256-bit curve.
            Some(_) => Err("an EC PRIVATE KEY must name its curve, P-256 (or use PKCS#8)"),
            None => Err("not a SEC1 EC private key"),
        },
        "ENCRYPTED PRIVATE KEY" => Err("encrypted private keys are not accepted"),
        _ => Err("not a private key (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"),
    }
}

/// The algorithm of a PKCS#8 PrivateKeyInfo (RFC 5208 §5, RFC 5958 §2), from its
/// AlgorithmIdentifier; the wrapped key must have the structure that identifier announces.
fn pkcs8_alg(der: &[u8]) -> Result<Alg, &'static str> {
    const NOT_PKCS8: &str = "not a PKCS#8 private key";
    let body = whole(SEQUENCE, der).ok_or(NOT_PKCS8)?;
    let (_version, rest) = take(INTEGER, body).ok_or(NOT_PKCS8)?;
    let (algorithm, rest) = take(SEQUENCE, rest).ok_or(NOT_PKCS8)?;
    let (private_key, _attributes) = take(OCTET_STRING, rest).ok_or(NOT_PKCS8)?;
    let (oid, params) = take(OID, algorithm).ok_or(NOT_PKCS8)?;
    match oid {
        RSA_ENCRYPTION if is_rsa_private_key(private_key) => Ok(Alg::Rs256),
        RSA_ENCRYPTION => Err("the PKCS#8 RSA key holds no PKCS#1 RSA private key"),
        ID_EC_PUBLIC_KEY if whole(OID, params) != Some(PRIME256V1) => {
            Err("EC keys must be on P-256 (ES256)")
        }
        ID_EC_PUBLIC_KEY => match ec_private_key_curve(private_key) {
            // RFC 5915 §3: the curve may be repeated inside; it must then be the same one.
            Some(None | Some(PRIME256V1)) => Ok(Alg::Es256),
            _ => Err("the PKCS#8 EC key holds no P-256 private key"),
        },
        _ => Err("unsupported key type: RSA or EC P-256 expected"),
    }
}

/// RFC 8017 Appendix A.1.2 RSAPrivateKey of two primes: version 0 and eight INTEGERs.
/// Multi-prime keys (version 1) are refused: WebCrypto does not import them.
fn is_rsa_private_key(der: &[u8]) -> bool {
    let Some(mut rest) = whole(SEQUENCE, der) else {
        return false;
    };
    for i in 0..9 {
        match take(INTEGER, rest) {
            Some((value, next)) if i > 0 || value == [0] => rest = next,
            _ => return false,
        }
    }
    rest.is_empty()
}

/// RFC 5915 §3 ECPrivateKey (version 1, a 32-byte key): `Some(curve)`, where the curve is the
/// OID of its optional `parameters`; `None` when it is no such structure.
fn ec_private_key_curve(der: &[u8]) -> Option<Option<&[u8]>> {
    let body = whole(SEQUENCE, der)?;
    let (version, rest) = take(INTEGER, body)?;
    let (key, rest) = take(OCTET_STRING, rest)?;
    if version != [1] || key.len() != 32 {
        return None;
    }
    match take(EC_PARAMETERS, rest) {
        Some((params, _)) => Some(Some(whole(OID, params)?)),
        None => Some(None),
    }
}

/// PKCS#1 → PKCS#8: `SEQUENCE { INTEGER 0, SEQUENCE { rsaEncryption, NULL }, OCTET STRING key }`
/// (RFC 8017 Appendix A.1: the parameters of rsaEncryption are NULL).
pub(super) fn wrap_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    let algorithm = [tlv(OID, RSA_ENCRYPTION), tlv(NULL, &[])].concat();
    private_key_info(&algorithm, pkcs1)
}

/// SEC1 → PKCS#8, with the curve in the AlgorithmIdentifier (RFC 5480 §2.1.1); the
/// ECPrivateKey is kept whole, its own copy of the curve included (RFC 5915 §3 allows it).
fn wrap_sec1(sec1: &[u8]) -> Vec<u8> {
    let algorithm = [tlv(OID, ID_EC_PUBLIC_KEY), tlv(OID, PRIME256V1)].concat();
    private_key_info(&algorithm, sec1)
}

fn private_key_info(algorithm: &[u8], private_key: &[u8]) -> Vec<u8> {
    let body = [
        tlv(INTEGER, &[0]),
        tlv(SEQUENCE, algorithm),
        tlv(OCTET_STRING, private_key),
    ]
    .concat();
    tlv(SEQUENCE, &body)
}

/// One DER element with a definite length (X.690 §8.1.3).
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len().to_be_bytes();
    let skip = len.iter().take_while(|b| **b == 0).count();
    let mut out = vec![tag];
    match u8::try_from(contents.len()) {
        Ok(short) if short < 0x80 => out.push(short),
        // The long form: 0x80 | the number of length bytes, then the length, big-endian.
        _ => {
            let count = len.len() - skip; // at most 8
            out.push(0x80 | count as u8);
            out.extend_from_slice(&len[skip..]);
        }
    }
    out.extend_from_slice(contents);
    out
}

/// The contents of the element `tag` at the start of `der`, and what follows it.
pub(super) fn take(tag: u8, der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        short @ 0..=0x7f => (usize::from(short), rest),
        0x81..=0x84 => {
            let (bytes, rest) = rest.split_at_checked(usize::from(first & 0x7f))?;
            (bytes.iter().fold(0, |n, b| n << 8 | usize::from(*b)), rest)
        }
        _ => return None,
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    (found == tag).then_some((contents, rest))
}

/// The contents of `der` when it is exactly one element `tag`.
pub(super) fn whole(tag: u8, der: &[u8]) -> Option<&[u8]> {
    take(tag, der).and_then(|(contents, rest)| rest.is_empty().then_some(contents))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_short_form_below_128_and_the_long_form_above() {
        assert_eq!(
            tlv(OCTET_STRING, &[7; 3]),
            [&[0x04, 3][..], &[7; 3]].concat()
        );
        assert_eq!(tlv(OCTET_STRING, &[7; 127])[..2], [0x04, 0x7f]);
        assert_eq!(tlv(OCTET_STRING, &[7; 128])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(OCTET_STRING, &[7; 1217])[..4], [0x04, 0x82, 0x04, 0xc1]);
        for len in [0, 1, 127, 128, 255, 256, 70_000] {
            let der = tlv(SEQUENCE, &vec![1; len]);
            assert_eq!(whole(SEQUENCE, &der).map(<[u8]>::len), Some(len));
        }
    }

    #[test]
    fn truncated_or_trailing_der_is_no_element() {
        let der = tlv(SEQUENCE, &[1, 2, 3]);
        assert_eq!(whole(SEQUENCE, &der[..der.len() - 1]), None);
        assert_eq!(whole(SEQUENCE, &[der.as_slice(), &[0]].concat()), None);
        assert_eq!(whole(INTEGER, &der), None, "wrong tag");
        assert_eq!(take(SEQUENCE, &[0x30, 0x85, 0, 0, 0, 0, 1]), None);
    }

    #[test]
    fn keys_of_other_types_are_refused_with_the_reason() {
        // Ed25519 (RFC 8410 §7): a PKCS#8 key of an algorithm we do not sign with.
        let ed25519 =
            private_key_info(&tlv(OID, &[0x2b, 0x65, 0x70]), &tlv(OCTET_STRING, &[9; 32]));
        assert_eq!(
            pkcs8_alg(&ed25519),
            Err("unsupported key type: RSA or EC P-256 expected")
        );
        // P-384 (1.3.132.0.34), in PKCS#8 and in SEC1.
        let sec1 = tlv(
            SEQUENCE,
            &[
                tlv(INTEGER, &[1]),
                tlv(OCTET_STRING, &[9; 32]),
                tlv(EC_PARAMETERS, &tlv(OID, &[0x2b, 0x81, 0x04, 0x00, 0x22])),
            ]
            .concat(),
        );
        let p384 = [
            tlv(OID, ID_EC_PUBLIC_KEY),
            tlv(OID, &[0x2b, 0x81, 0x04, 0x00, 0x22]),
        ]
        .concat();
        assert_eq!(
            pkcs8_alg(&private_key_info(&p384, &sec1)),
            Err("EC keys must be on P-256 (ES256)")
        );
        assert!(material("EC PRIVATE KEY", &sec1).is_err());
        assert!(material("ENCRYPTED PRIVATE KEY", &sec1).is_err());
        assert!(material("CERTIFICATE", &sec1).is_err());
    }
}
