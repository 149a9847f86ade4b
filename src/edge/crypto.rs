//! Signing with the runtime's WebCrypto (`crypto.subtle`, native code in workerd) instead of
//! RSA and ECDSA compiled into the wasm. The core parses `SIGNING_KEYS` and builds the JWS
//! (`core::keys`); this imports each key and makes the signatures.

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

use crate::core::keys::managed::{KeyVault, VaultFuture};
use crate::core::keys::{
    parse_pems, Alg, KeyBackend, KeyError, KeyMaterial, KeySet, PublicKey, SignFuture, SigningKey,
    Verifier, VerifyFuture,
};

/// The keys of `SIGNING_KEYS`, imported into WebCrypto, or a key set that says why it has none.
pub async fn load(pems: &str) -> KeySet {
    let materials = match parse_pems(pems) {
        Ok(m) => m,
        Err(e) => return KeySet::from_error(e),
    };
    let mut keys = Vec::with_capacity(materials.len());
    for (i, material) in materials.iter().enumerate() {
        match import(material).await {
            Ok(key) => keys.push(key),
            Err(e) => return KeySet::from_error(KeyError(format!("key {i}: {}", e.0))),
        }
    }
    KeySet::from_keys(keys)
}

/// `importKey("pkcs8")`, then the public members from `exportKey("jwk")` (SigningKey::new
/// keeps those only). Extractable only so the public half can be exported: the PEM it came
/// from is in this isolate's memory anyway.
async fn import(material: &KeyMaterial) -> Result<SigningKey, KeyError> {
    let subtle = subtle()?;
    let (import_params, sign_params) = algorithm(material.alg)?;
    let der = Uint8Array::from(material.pkcs8_der.as_slice());
    let usages = Array::of1(&"sign".into());
    let key: CryptoKey =
        settle(subtle.import_key_with_object("pkcs8", &der, &import_params, true, &usages))
            .await?
            .unchecked_into();
    let jwk = settle(subtle.export_key("jwk", &key)).await?;
    let mut public = serde_json::Map::new();
    for name in material.alg.public_members() {
        if let Some(value) = Reflect::get(&jwk, &name.into())
            .ok()
            .and_then(|v| v.as_string())
        {
            public.insert(name.into(), value.into());
        }
    }
    let backend = WebCryptoKey {
        subtle,
        key,
        params: sign_params,
    };
    SigningKey::new(material.alg, &public.into(), Box::new(backend))
}

struct WebCryptoKey {
    subtle: SubtleCrypto,
    key: CryptoKey,
    params: Object,
}

impl KeyBackend for WebCryptoKey {
    fn sign<'a>(&'a self, input: &'a [u8]) -> SignFuture<'a> {
        Box::pin(async move {
            // WebCrypto copies `input` when called (it is a view of wasm memory).
            let promise = self
                .subtle
                .sign_with_object_and_u8_array(&self.params, &self.key, input);
            let signature = settle(promise).await?;
            Ok(Uint8Array::new(&signature).to_vec())
        })
    }
}

/// WebCrypto's parameters for `alg`: for importing a key, and for signing or verifying.
fn algorithm(alg: Alg) -> Result<(Object, Object), KeyError> {
    Ok(match alg {
        Alg::Rs256 => (
            object(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", "SHA-256")])?,
            object(&[("name", "RSASSA-PKCS1-v1_5")])?,
        ),
        Alg::Es256 => (
            object(&[("name", "ECDSA"), ("namedCurve", "P-256")])?,
            object(&[("name", "ECDSA"), ("hash", "SHA-256")])?,
        ),
    })
}

/// `crypto.subtle` of the worker's global scope.
fn subtle() -> Result<SubtleCrypto, KeyError> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(js_error)?;
    if !crypto.is_object() {
        return Err(KeyError("no WebCrypto (`crypto`) in this runtime".into()));
    }
    Ok(crypto.unchecked_into::<web_sys::Crypto>().subtle())
}

fn object(members: &[(&str, &str)]) -> Result<Object, KeyError> {
    let object = Object::new();
    for (name, value) in members {
        Reflect::set(&object, &(*name).into(), &(*value).into()).map_err(js_error)?;
    }
    Ok(object)
}

async fn settle(promise: Result<Promise, JsValue>) -> Result<JsValue, KeyError> {
    JsFuture::from(promise.map_err(js_error)?)
        .await
        .map_err(js_error)
}

/// A WebCrypto exception as text (its `name` and `message`; no key material is in either).
fn js_error(e: JsValue) -> KeyError {
    let field = |name: &str| {
        Reflect::get(&e, &name.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    KeyError(format!("WebCrypto: {} {}", field("name"), field("message")))
}

/// Verifies client signatures with WebCrypto: the registered key is imported as a JWK for
/// each check (a public-key import costs microseconds; nothing is cached across apps).
pub struct WebCryptoVerifier;

impl Verifier for WebCryptoVerifier {
    fn verify<'a>(
        &'a self,
        key: &'a PublicKey,
        input: &'a [u8],
        signature: &'a [u8],
    ) -> VerifyFuture<'a> {
        Box::pin(async move {
            let subtle = subtle()?;
            let (import_params, verify_params) = algorithm(key.alg)?;
            let jwk: Object = js_sys::JSON::parse(&key.jwk.to_string())
                .map_err(js_error)?
                .unchecked_into();
            let usages = Array::of1(&"verify".into());
            let imported: CryptoKey =
                settle(subtle.import_key_with_object("jwk", &jwk, &import_params, false, &usages))
                    .await?
                    .unchecked_into();
            let verified = settle(subtle.verify_with_object_and_u8_array_and_u8_array(
                &verify_params,
                &imported,
                signature,
                input,
            ))
            .await?;
            Ok(verified.as_bool() == Some(true))
        })
    }
}

/// The managed keys' [`KeyVault`] on WebCrypto: key pairs made by `generateKey`, sealed with
/// AES-256-GCM under the key derived from `KEY_WRAPPING_KEY` (imported non-extractable).
pub struct WebCryptoVault {
    wrapping: [u8; 32],
}

impl WebCryptoVault {
    pub fn new(secret: &str) -> Result<Self, KeyError> {
        Ok(Self {
            wrapping: crate::core::keys::managed::wrapping_key(secret)?,
        })
    }

    async fn aes(&self) -> Result<CryptoKey, KeyError> {
        let raw = Uint8Array::from(self.wrapping.as_slice());
        let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
        Ok(settle(subtle()?.import_key_with_object(
            "raw",
            &raw,
            &object(&[("name", "AES-GCM")])?,
            false,
            &usages,
        ))
        .await?
        .unchecked_into())
    }

    fn gcm(iv: &[u8], kid: &str) -> Result<Object, KeyError> {
        let params = object(&[("name", "AES-GCM")])?;
        Reflect::set(&params, &"iv".into(), &Uint8Array::from(iv)).map_err(js_error)?;
        Reflect::set(
            &params,
            &"additionalData".into(),
            &Uint8Array::from(kid.as_bytes()),
        )
        .map_err(js_error)?;
        Ok(params)
    }
}

impl KeyVault for WebCryptoVault {
    fn generate(&self, alg: Alg) -> VaultFuture<'_, Vec<u8>> {
        Box::pin(async move {
            let params = match alg {
                Alg::Rs256 => {
                    let p = object(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", "SHA-256")])?;
                    Reflect::set(&p, &"modulusLength".into(), &JsValue::from_f64(2048.0))
                        .map_err(js_error)?;
                    Reflect::set(
                        &p,
                        &"publicExponent".into(),
                        &Uint8Array::from([1u8, 0, 1].as_slice()),
                    )
                    .map_err(js_error)?;
                    p
                }
                Alg::Es256 => object(&[("name", "ECDSA"), ("namedCurve", "P-256")])?,
            };
            let usages = Array::of2(&"sign".into(), &"verify".into());
            let subtle = subtle()?;
            let pair = settle(subtle.generate_key_with_object(&params, true, &usages)).await?;
            let private: CryptoKey = Reflect::get(&pair, &"privateKey".into())
                .map_err(js_error)?
                .unchecked_into();
            let der = settle(subtle.export_key("pkcs8", &private)).await?;
            Ok(Uint8Array::new(&der).to_vec())
        })
    }

    fn seal<'a>(&'a self, der: &'a [u8], kid: &'a str) -> VaultFuture<'a, Vec<u8>> {
        Box::pin(async move {
            let mut iv = [0u8; 12];
            getrandom::getrandom(&mut iv).map_err(|e| KeyError(format!("random: {e}")))?;
            let key = self.aes().await?;
            let sealed = settle(subtle()?.encrypt_with_object_and_u8_array(
                &Self::gcm(&iv, kid)?,
                &key,
                der,
            ))
            .await?;
            Ok([iv.as_slice(), &Uint8Array::new(&sealed).to_vec()].concat())
        })
    }

    fn open<'a>(&'a self, sealed: &'a [u8], kid: &'a str) -> VaultFuture<'a, Vec<u8>> {
        Box::pin(async move {
            if sealed.len() < 12 + 16 {
                return Err(KeyError("sealed key too short".into()));
            }
            let (iv, body) = sealed.split_at(12);
            let key = self.aes().await?;
            let der = settle(subtle()?.decrypt_with_object_and_u8_array(
                &Self::gcm(iv, kid)?,
                &key,
                body,
            ))
            .await
            .map_err(|_| KeyError("the key does not open with KEY_WRAPPING_KEY".into()))?;
            Ok(Uint8Array::new(&der).to_vec())
        })
    }

    fn load<'a>(
        &'a self,
        pems: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = KeySet> + 'a>> {
        Box::pin(load(pems))
    }
}
