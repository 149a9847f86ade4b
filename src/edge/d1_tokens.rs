//! Token families and tokens in D1. Single-use transitions (code redemption, refresh rotation)
//! are a primary-key insert inside a batch: D1 runs a batch as one transaction, so when the
//! insert hits an existing key nothing of the batch is written, and exactly one caller wins.

use serde::Deserialize;
use worker::D1PreparedStatement;

use super::store::{backend, Arg, EdgeStore};
use crate::core::secret::SecretHash;
use crate::core::storage::{
    Family, FoundToken, Issue, Redemption, Rotation, StoreError, TokenKind, TokenRecord,
    TokenState, TokenStore,
};

fn kind_str(k: TokenKind) -> &'static str {
    match k {
        TokenKind::Access => "access",
        TokenKind::Refresh => "refresh",
    }
}

impl EdgeStore {
    fn insert_token(&self, t: &TokenRecord) -> Result<D1PreparedStatement, StoreError> {
        let scopes = serde_json::to_string(&t.scopes).map_err(backend)?;
        self.stmt(
            "INSERT INTO tokens (token_hash, family_id, kind, scopes, created_at, expires_at, state) VALUES (?, ?, ?, ?, ?, ?, 'active')",
            &[
                Arg::Text(&t.hash.0),
                Arg::Text(&t.family_id),
                Arg::Text(kind_str(t.kind)),
                Arg::Text(&scopes),
                Arg::Int(t.created_at_s),
                Arg::OptInt(t.expires_at_s),
            ],
        )
    }

    /// Whether a single-use marker row exists (read after a refused batch, to tell a lost race
    /// from a backend failure).
    async fn marker_exists(
        &self,
        table: &str,
        column: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let row: Option<serde_json::Value> = self
            .first(
                &format!("SELECT 1 AS x FROM {table} WHERE {column} = ?"),
                &[Arg::Text(key)],
            )
            .await?;
        Ok(row.is_some())
    }
}

#[derive(Deserialize)]
struct FoundRow {
    token_hash: String,
    family_id: String,
    kind: String,
    token_scopes: String,
    token_created_at: u64,
    expires_at: Option<u64>,
    state: String,
    client_id: String,
    user_id: String,
    family_scopes: String,
    auth_time: u64,
    family_created_at: u64,
    last_used_ms: u64,
    revoked_at: Option<u64>,
    rotated_ms: Option<u64>,
}

impl FoundRow {
    fn into_found(self) -> Result<FoundToken, StoreError> {
        let parse = |s: &str| serde_json::from_str::<Vec<String>>(s).map_err(backend);
        Ok(FoundToken {
            token: TokenRecord {
                hash: SecretHash(self.token_hash),
                family_id: self.family_id.clone(),
                kind: if self.kind == "refresh" {
                    TokenKind::Refresh
                } else {
                    TokenKind::Access
                },
                scopes: parse(&self.token_scopes)?,
                created_at_s: self.token_created_at,
                expires_at_s: self.expires_at,
                state: match self.state.as_str() {
                    "active" => TokenState::Active,
                    "rotated" => TokenState::Rotated,
                    _ => TokenState::Revoked,
                },
            },
            family: Family {
                family_id: self.family_id,
                client_id: self.client_id,
                user_id: self.user_id,
                scopes: parse(&self.family_scopes)?,
                auth_time_s: self.auth_time,
                created_at_s: self.family_created_at,
                last_used_at_ms: self.last_used_ms,
                revoked_at_s: self.revoked_at,
            },
            rotated_at_ms: self.rotated_ms,
        })
    }
}

impl TokenStore for EdgeStore {
    async fn redeem_code(
        &self,
        code_hash: &SecretHash,
        issue: &Issue,
    ) -> Result<Redemption, StoreError> {
        let f = &issue.family;
        let scopes = serde_json::to_string(&f.scopes).map_err(backend)?;
        let mut stmts = vec![
            self.stmt(
                "INSERT INTO code_redemptions (code_hash, family_id, redeemed_at) VALUES (?, ?, ?)",
                &[Arg::Text(&code_hash.0), Arg::Text(&f.family_id), Arg::Int(f.created_at_s)],
            )?,
            self.stmt(
                "INSERT INTO token_families (family_id, client_id, user_id, scopes, auth_time, created_at, last_used_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                &[
                    Arg::Text(&f.family_id),
                    Arg::Text(&f.client_id),
                    Arg::Text(&f.user_id),
                    Arg::Text(&scopes),
                    Arg::Int(f.auth_time_s),
                    Arg::Int(f.created_at_s),
                    Arg::Int(f.last_used_at_ms),
                ],
            )?,
        ];
        for t in &issue.tokens {
            stmts.push(self.insert_token(t)?);
        }
        match self.batch(stmts).await {
            Ok(_) => Ok(Redemption::Issued),
            Err(_)
                if self
                    .marker_exists("code_redemptions", "code_hash", &code_hash.0)
                    .await? =>
            {
                Ok(Redemption::Replayed)
            }
            Err(e) => Err(backend(format!("{e:?}"))),
        }
    }

    async fn find_token(&self, hash: &SecretHash) -> Result<Option<FoundToken>, StoreError> {
        let row: Option<FoundRow> = self
            .first(
                "SELECT t.token_hash, t.family_id, t.kind, t.scopes AS token_scopes, t.created_at AS token_created_at, t.expires_at, t.state, \
                 f.client_id, f.user_id, f.scopes AS family_scopes, f.auth_time, f.created_at AS family_created_at, f.last_used_ms, f.revoked_at, r.rotated_ms \
                 FROM tokens t JOIN token_families f ON f.family_id = t.family_id \
                 LEFT JOIN refresh_rotations r ON r.token_hash = t.token_hash WHERE t.token_hash = ?",
                &[Arg::Text(&hash.0)],
            )
            .await?;
        row.map(FoundRow::into_found).transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        family_id: &str,
        tokens: &[TokenRecord],
        now_ms: u64,
    ) -> Result<Rotation, StoreError> {
        let mut stmts = vec![
            self.stmt(
                "INSERT INTO refresh_rotations (token_hash, family_id, rotated_ms) VALUES (?, ?, ?)",
                &[Arg::Text(&old.0), Arg::Text(family_id), Arg::Int(now_ms)],
            )?,
            self.stmt("UPDATE tokens SET state = 'rotated' WHERE token_hash = ?", &[Arg::Text(&old.0)])?,
            self.stmt(
                "UPDATE token_families SET last_used_ms = ? WHERE family_id = ?",
                &[Arg::Int(now_ms), Arg::Text(family_id)],
            )?,
        ];
        for t in tokens {
            stmts.push(self.insert_token(t)?);
        }
        match self.batch(stmts).await {
            Ok(_) => Ok(Rotation::Rotated),
            Err(e) => {
                // A refused batch: a lost race (the marker row exists) or a backend failure.
                #[derive(Deserialize)]
                struct Row {
                    rotated_ms: u64,
                }
                let row: Option<Row> = self
                    .first(
                        "SELECT rotated_ms FROM refresh_rotations WHERE token_hash = ?",
                        &[Arg::Text(&old.0)],
                    )
                    .await?;
                match row {
                    Some(r) => Ok(Rotation::Reused {
                        rotated_at_ms: r.rotated_ms,
                    }),
                    None => Err(backend(format!("{e:?}"))),
                }
            }
        }
    }

    async fn extend_family(
        &self,
        family_id: &str,
        tokens: &[TokenRecord],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut stmts = vec![self.stmt(
            "UPDATE token_families SET last_used_ms = ? WHERE family_id = ?",
            &[Arg::Int(now_ms), Arg::Text(family_id)],
        )?];
        for t in tokens {
            stmts.push(self.insert_token(t)?);
        }
        self.batch(stmts)
            .await
            .map(|_| ())
            .map_err(|e| backend(format!("{e:?}")))
    }

    async fn revoke_family(&self, family_id: &str, now_s: u64) -> Result<(), StoreError> {
        self.exec(
            "UPDATE token_families SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
            &[Arg::Int(now_s), Arg::Text(family_id)],
        )
        .await?;
        Ok(())
    }

    async fn revoke_token(&self, hash: &SecretHash, now_s: u64) -> Result<(), StoreError> {
        // One round trip: a refresh token takes its family down; an access token only itself.
        self.batch(vec![
            self.stmt(
                "UPDATE token_families SET revoked_at = ? WHERE revoked_at IS NULL AND family_id = (SELECT family_id FROM tokens WHERE token_hash = ? AND kind = 'refresh')",
                &[Arg::Int(now_s), Arg::Text(&hash.0)],
            )?,
            self.stmt(
                "UPDATE tokens SET state = 'revoked' WHERE token_hash = ? AND kind = 'access'",
                &[Arg::Text(&hash.0)],
            )?,
        ])
        .await
        .map(|_| ())
        .map_err(|e| backend(format!("{e:?}")))
    }
}
