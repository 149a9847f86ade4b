//! The floor worker of `make bench`: the least a Rust worker can do for a request that needs a
//! given sequence of storage round trips. `GET|POST /floor?ops=kv_get,d1_read,d1_batch,kv_put`
//! reads the body (if any), makes exactly those round trips in that order, and answers a small
//! JSON body. `/seed` writes the KV keys `kv_get` reads (bench setup only); anything else is a
//! 200 with no storage access. Two ops are no storage but a password hash, so that the same wasm
//! runtime measures both candidates: `argon2id` (the main server's parameters, in wasm) and
//! `pbkdf2` (PBKDF2-HMAC-SHA256 at workerd's 100,000-iteration cap, in WebCrypto).
use worker::js_sys::{Array, Math, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::*;

/// KV keys `seed:0` … `seed:63` (written by `/seed`) and D1 rows `items` 1 … 64 (migration).
const KEYS: u32 = 64;

fn rand_u32() -> u32 {
    (Math::random() * 4294967296.0) as u32
}

fn fresh_id() -> String {
    format!("{:08x}{:08x}{:08x}{:08x}", rand_u32(), rand_u32(), rand_u32(), rand_u32())
}

fn now_ms() -> f64 {
    Date::now().as_millis() as f64
}

/// A fixed 16-character password for both hashing ops.
const PASSWORD: &[u8; 16] = b"correct-horse-42";

fn fresh_salt() -> Result<[u8; 16]> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| Error::RustError(format!("getrandom: {e}")))?;
    Ok(salt)
}

/// Argon2id v0x13, m = 19456 KiB, t = 2, p = 1 (src/core/password.rs), 32-byte output.
fn argon2id() -> Result<()> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(19 * 1024, 2, 1, Some(32)).map_err(|e| Error::RustError(format!("argon2: {e}")))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(PASSWORD, &fresh_salt()?, &mut out)
        .map_err(|e| Error::RustError(format!("argon2: {e}")))
}

async fn settle(promise: std::result::Result<Promise, JsValue>) -> Result<JsValue> {
    Ok(JsFuture::from(promise?).await?)
}

/// PBKDF2-HMAC-SHA256, 100,000 iterations (workerd's cap), 256 bits, in WebCrypto.
async fn pbkdf2() -> Result<()> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())?;
    let subtle = crypto.unchecked_into::<web_sys::Crypto>().subtle();
    let password = Uint8Array::from(&PASSWORD[..]);
    let usages = Array::of1(&"deriveBits".into());
    let key = settle(subtle.import_key_with_str("raw", &password, "PBKDF2", false, &usages)).await?;
    let params = Object::new();
    Reflect::set(&params, &"name".into(), &"PBKDF2".into())?;
    Reflect::set(&params, &"hash".into(), &"SHA-256".into())?;
    Reflect::set(&params, &"salt".into(), &Uint8Array::from(&fresh_salt()?[..]))?;
    Reflect::set(&params, &"iterations".into(), &100_000.into())?;
    let bits = settle(subtle.derive_bits_with_object(&params, &key.unchecked_into(), 256)).await?;
    let len = bits.unchecked_into::<js_sys::ArrayBuffer>().byte_length();
    if len != 32 {
        return Err(Error::RustError(format!("pbkdf2: {len} bytes")));
    }
    Ok(())
}

async fn run_op(op: &str, env: &Env) -> Result<()> {
    let item = f64::from(rand_u32() % KEYS + 1);
    match op {
        "kv_get" => {
            env.kv("KV")?.get(&format!("seed:{}", rand_u32() % KEYS)).text().await?;
        }
        "kv_put" => {
            let value = format!("{{\"user\":\"u{}\",\"at\":{}}}", rand_u32(), now_ms());
            env.kv("KV")?.put(&format!("p:{}", fresh_id()), value)?.expiration_ttl(3600).execute().await?;
        }
        "d1_read" => {
            let db = env.d1("DB")?;
            let stmt = db.prepare("SELECT id, value, counter, updated_at FROM items WHERE id = ?1").bind(&[item.into()])?;
            stmt.raw_js_value().await?;
        }
        "d1_batch" => {
            let db = env.d1("DB")?;
            let insert = db.prepare("INSERT INTO log (id, item, at) VALUES (?1, ?2, ?3)").bind(&[fresh_id().into(), item.into(), now_ms().into()])?;
            let update = db.prepare("UPDATE items SET counter = counter + 1, updated_at = ?2 WHERE id = ?1").bind(&[item.into(), now_ms().into()])?;
            db.batch(vec![insert, update]).await?;
        }
        "d1_write" => {
            let db = env.d1("DB")?;
            db.prepare("INSERT INTO log (id, item, at) VALUES (?1, ?2, ?3)").bind(&[fresh_id().into(), item.into(), now_ms().into()])?.run().await?;
        }
        "argon2id" => argon2id()?,
        "pbkdf2" => pbkdf2().await?,
        other => return Err(Error::RustError(format!("unknown op {other}"))),
    }
    Ok(())
}

fn json(status: u16, body: String) -> Result<Response> {
    let mut r = Response::ok(body)?.with_status(status);
    r.headers_mut().set("content-type", "application/json")?;
    Ok(r)
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let url = req.url()?;
    if req.method() == Method::Post {
        req.bytes().await?;
    }
    match url.path() {
        "/floor" => {
            let ops: Vec<String> = url
                .query_pairs()
                .filter(|(k, _)| k == "ops")
                .flat_map(|(_, v)| v.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>())
                .collect();
            for op in &ops {
                if let Err(e) = run_op(op, &env).await {
                    return json(500, format!("{{\"error\":\"{op}\",\"detail\":{:?}}}", e.to_string()));
                }
            }
            json(200, format!("{{\"ok\":true,\"ops\":{}}}", ops.len()))
        }
        "/seed" => {
            let kv = env.kv("KV")?;
            for i in 0..KEYS {
                kv.put(&format!("seed:{i}"), format!("{{\"user\":\"u{i}\",\"scope\":\"api\"}}"))?.execute().await?;
            }
            json(200, format!("{{\"seeded\":{KEYS}}}"))
        }
        _ => json(200, "{\"floor\":true}".into()),
    }
}
