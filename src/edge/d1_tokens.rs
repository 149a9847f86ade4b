//! Token families and tokens in D1. Single-use transitions (code redemption, refresh rotation)
//! are a primary-key insert inside a batch: D1 runs a batch as one transaction, so when the
//! insert hits an existing key nothing of the batch is written, and exactly one caller wins.

use serde::Deserialize;
use worker::D1PreparedStatement;

use super::store::{backend, changes, Arg, EdgeStore};
use crate::core::maintenance::{Cutoffs, Purged};
use crate::core::model::User;
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

    /// As [`Self::insert_token`], but only if the token's family exists (it may have been
    /// refused earlier in the same batch).
    fn insert_token_of_family(&self, t: &TokenRecord) -> Result<D1PreparedStatement, StoreError> {
        let scopes = serde_json::to_string(&t.scopes).map_err(backend)?;
        self.stmt(
            "INSERT INTO tokens (token_hash, family_id, kind, scopes, created_at, expires_at, state) \
             SELECT ?, ?, ?, ?, ?, ?, 'active' WHERE EXISTS (SELECT 1 FROM token_families WHERE family_id = ?)",
            &[
                Arg::Text(&t.hash.0),
                Arg::Text(&t.family_id),
                Arg::Text(kind_str(t.kind)),
                Arg::Text(&scopes),
                Arg::Int(t.created_at_s),
                Arg::OptInt(t.expires_at_s),
                Arg::Text(&t.family_id),
            ],
        )
    }

    /// The family's access tokens that are live (revoking the family ends them).
    fn live_access_of_family(
        &self,
        family_id: &str,
        now_s: u64,
    ) -> Result<D1PreparedStatement, StoreError> {
        self.stmt(
            "SELECT token_hash FROM tokens WHERE family_id = ? AND kind = 'access' AND state = 'active' AND expires_at > ?",
            &[Arg::Text(family_id), Arg::Int(now_s)],
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

/// A token with its family, rotation marker and user: the columns of [`FoundRow`].
const FOUND_SELECT: &str = "SELECT t.token_hash, t.family_id, t.kind, t.scopes AS token_scopes, t.created_at AS token_created_at, t.expires_at, t.state, \
     f.client_id, f.user_id, f.scopes AS family_scopes, f.auth_time, f.created_at AS family_created_at, f.last_used_ms, f.revoked_at, r.rotated_ms, \
     u.username AS u_username, u.password_hash AS u_password_hash, u.email AS u_email, u.name AS u_name, u.active AS u_active, u.created_at AS u_created_at, u.sessions_valid_from_ms AS u_sessions_valid_from_ms \
     FROM tokens t JOIN token_families f ON f.family_id = t.family_id \
     LEFT JOIN refresh_rotations r ON r.token_hash = t.token_hash \
     LEFT JOIN users u ON u.user_id = f.user_id";

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
    u_username: Option<String>,
    u_password_hash: Option<String>,
    u_email: Option<String>,
    u_name: Option<String>,
    u_active: Option<i64>,
    u_created_at: Option<u64>,
    u_sessions_valid_from_ms: Option<u64>,
}

impl FoundRow {
    fn into_found(self) -> Result<FoundToken, StoreError> {
        let parse = |s: &str| serde_json::from_str::<Vec<String>>(s).map_err(backend);
        let user = match (
            self.u_username,
            self.u_password_hash,
            self.u_email,
            self.u_name,
        ) {
            (Some(username), Some(password_hash), Some(email), Some(name)) => Some(User {
                user_id: self.user_id.clone(),
                username,
                password_hash,
                email,
                name,
                active: self.u_active.unwrap_or(0) != 0,
                created_at: self.u_created_at.unwrap_or(0),
                sessions_valid_from_ms: self.u_sessions_valid_from_ms.unwrap_or(0),
            }),
            _ => None,
        };
        Ok(FoundToken {
            user,
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
        user_valid_at_ms: u64,
    ) -> Result<Redemption, StoreError> {
        let f = &issue.family;
        let scopes = serde_json::to_string(&f.scopes).map_err(backend)?;
        let mut stmts = vec![
            self.stmt(
                "INSERT INTO code_redemptions (code_hash, family_id, redeemed_at) VALUES (?, ?, ?)",
                &[Arg::Text(&code_hash.0), Arg::Text(&f.family_id), Arg::Int(f.created_at_s)],
            )?,
            // The family only for a user who is active and has not changed their password since
            // the code was minted; the tokens only with their family.
            self.stmt(
                "INSERT INTO token_families (family_id, client_id, user_id, scopes, auth_time, created_at, last_used_ms) \
                 SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE user_id = ? AND active = 1 AND sessions_valid_from_ms <= ?)",
                &[
                    Arg::Text(&f.family_id),
                    Arg::Text(&f.client_id),
                    Arg::Text(&f.user_id),
                    Arg::Text(&scopes),
                    Arg::Int(f.auth_time_s),
                    Arg::Int(f.created_at_s),
                    Arg::Int(f.last_used_at_ms),
                    Arg::Text(&f.user_id),
                    Arg::Int(user_valid_at_ms),
                ],
            )?,
        ];
        for t in &issue.tokens {
            stmts.push(self.insert_token_of_family(t)?);
        }
        match self.batch(stmts).await {
            Ok(results) if results.get(1).map(changes) == Some(1) => Ok(Redemption::Issued),
            Ok(_) => Ok(Redemption::UserInvalid),
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
                &format!("{FOUND_SELECT} WHERE t.token_hash = ?"),
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

    async fn revoke_family(
        &self,
        family_id: &str,
        now_s: u64,
    ) -> Result<Vec<SecretHash>, StoreError> {
        let results = self
            .batch(vec![
                self.live_access_of_family(family_id, now_s)?,
                self.stmt(
                    "UPDATE token_families SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
                    &[Arg::Int(now_s), Arg::Text(family_id)],
                )?,
            ])
            .await?;
        hashes(results.first())
    }

    async fn revoke_token(
        &self,
        hash: &SecretHash,
        now_s: u64,
    ) -> Result<Vec<SecretHash>, StoreError> {
        // One round trip: a refresh token takes its family down; an access token only itself.
        // First, what that ends: the family's live access tokens, or the access token itself.
        let results = self
            .batch(vec![
                self.stmt(
                    "SELECT token_hash FROM tokens WHERE kind = 'access' AND state = 'active' AND expires_at > ? AND \
                     (token_hash = ? OR family_id = (SELECT family_id FROM tokens WHERE token_hash = ? AND kind = 'refresh'))",
                    &[Arg::Int(now_s), Arg::Text(&hash.0), Arg::Text(&hash.0)],
                )?,
                self.stmt(
                    "UPDATE token_families SET revoked_at = ? WHERE revoked_at IS NULL AND family_id = (SELECT family_id FROM tokens WHERE token_hash = ? AND kind = 'refresh')",
                    &[Arg::Int(now_s), Arg::Text(&hash.0)],
                )?,
                self.stmt(
                    "UPDATE tokens SET state = 'revoked' WHERE token_hash = ? AND kind = 'access'",
                    &[Arg::Text(&hash.0)],
                )?,
            ])
            .await?;
        hashes(results.first())
    }

    async fn unexpired_access_tokens(
        &self,
        user_id: &str,
        now_s: u64,
    ) -> Result<Vec<(TokenRecord, Family)>, StoreError> {
        let rows: Vec<FoundRow> = self
            .all(
                &format!(
                    "{FOUND_SELECT} WHERE f.user_id = ? AND t.kind = 'access' AND t.state != 'revoked' AND t.expires_at > ?"
                ),
                &[Arg::Text(user_id), Arg::Int(now_s)],
            )
            .await?;
        rows.into_iter()
            .map(|r| r.into_found().map(|f| (f.token, f.family)))
            .collect()
    }

    async fn purge(&self, c: &Cutoffs) -> Result<Purged, StoreError> {
        // The families that go: revoked before the cutoff, or with nothing usable left. The
        // same ordered, limited selection in each statement of the batch picks the same rows
        // (the statements before the last do not change which families qualify).
        const FAMILIES: &str = "SELECT family_id FROM token_families f WHERE f.revoked_at < ?1 \
             OR NOT EXISTS (SELECT 1 FROM tokens t WHERE t.family_id = f.family_id AND (t.kind = 'refresh' OR t.expires_at > ?2)) \
             ORDER BY family_id LIMIT ?3";
        let family_args = [
            Arg::Int(c.family_revoked_before_s),
            Arg::Int(c.now_s),
            Arg::Int(c.limit.into()),
        ];
        let limit = Arg::Int(c.limit.into());
        let results = self
            .batch(vec![
                self.stmt(
                    "DELETE FROM tokens WHERE rowid IN (SELECT rowid FROM tokens WHERE kind = 'access' AND expires_at <= ? LIMIT ?)",
                    &[Arg::Int(c.now_s), Arg::Int(c.limit.into())],
                )?,
                self.stmt(
                    &format!("DELETE FROM refresh_rotations WHERE family_id IN ({FAMILIES})"),
                    &family_args,
                )?,
                self.stmt(
                    &format!("DELETE FROM tokens WHERE family_id IN ({FAMILIES})"),
                    &family_args,
                )?,
                self.stmt(
                    &format!("DELETE FROM token_families WHERE family_id IN ({FAMILIES})"),
                    &family_args,
                )?,
                self.stmt(
                    "DELETE FROM code_redemptions WHERE rowid IN (SELECT rowid FROM code_redemptions WHERE redeemed_at < ? LIMIT ?)",
                    &[Arg::Int(c.code_redeemed_before_s), limit],
                )?,
                self.stmt(
                    "DELETE FROM registration_tokens WHERE rowid IN (SELECT rowid FROM registration_tokens WHERE expires_at <= ? LIMIT ?)",
                    &[Arg::Int(c.now_s), Arg::Int(c.limit.into())],
                )?,
            ])
            .await?;
        let n = |i: usize| results.get(i).map(changes).unwrap_or(0);
        Ok(Purged {
            access_tokens: n(0),
            families: n(3),
            code_redemptions: n(4),
            registration_tokens: n(5),
        })
    }
}

/// The `token_hash` column of a batch's SELECT.
fn hashes(result: Option<&worker::D1Result>) -> Result<Vec<SecretHash>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        token_hash: String,
    }
    let Some(result) = result else {
        return Ok(vec![]);
    };
    Ok(result
        .results::<Row>()
        .map_err(backend)?
        .into_iter()
        .map(|r| SecretHash(r.token_hash))
        .collect())
}
