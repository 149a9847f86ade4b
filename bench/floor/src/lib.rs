//! The floor worker of `make bench`: the least a Rust worker can do for a request that needs a
//! given sequence of storage round trips. `GET|POST /floor?ops=kv_get,d1_read,d1_batch,kv_put`
//! reads the body (if any), makes exactly those round trips in that order, and answers a small
//! JSON body. `/seed` writes the KV keys `kv_get` reads (bench setup only); anything else is a
//! 200 with no storage access.
use worker::js_sys::Math;
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
