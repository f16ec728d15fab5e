//! Channels, their members and invites, sub-channels and read-only flags (COMMANDS.md §2,
//! §3.3–3.4). No access rules here: callers check member levels (§2.3) and validate names
//! and levels before calling.
//!
//! Channel ids are `u64` on the wire and signed SQLite integers in the table; an id that
//! does not fit an `i64` cannot name a row, so lookups treat it as "not found" and inserts
//! refuse it with [`Error::Invalid`]. Values read back are checked with `try_from`.

use mrci_proto::UserId;
use sqlx::{Row, sqlite::SqliteRow};

use super::{Store, like_escape};
use crate::{Error, Result};

/// One channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Channel id (≥ 1), assigned by SQLite; it never changes.
    pub id: u64,
    /// Name (unique, case-insensitive).
    pub name: String,
}

/// One row of `channel_members` with the user's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's user id.
    pub user_id: UserId,
    /// The member's user name.
    pub user_name: String,
    /// The member's display name.
    pub display_name: String,
    /// True for an invite not yet accepted.
    pub pending: bool,
    /// Member level, 1 (owner) to 4 (regular).
    pub level: u8,
}

/// One sub-channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubChannel {
    /// The channel it belongs to.
    pub ch_id: u64,
    /// Sub-channel id, unique in the channel.
    pub sub_id: u8,
    /// Name (unique in the channel, case-insensitive).
    pub name: String,
    /// The highest member level allowed to open it; 5 makes it public.
    pub lowest_level: u8,
    /// The active-update flag.
    pub active_updates: bool,
}

/// One read-only flag: sessions that open `sub_id` at exactly `level` may not cast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdonlyFlag {
    /// Channel id.
    pub ch_id: u64,
    /// The channel's name.
    pub channel_name: String,
    /// Sub-channel id; the sub-channel need not exist.
    pub sub_id: u8,
    /// Member level, 1–5.
    pub level: u8,
}

/// One row of ls_chs: a channel the user belongs to or is invited to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRow {
    /// Channel id.
    pub ch_id: u64,
    /// The channel's name.
    pub channel_name: String,
    /// True for an invite not yet accepted.
    pub pending: bool,
    /// Member level, 1–4.
    pub level: u8,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// The table form of a channel id, or `None` if no row can have it.
fn db_id(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// The table form of a channel id for inserts.
fn db_id_or_invalid(id: u64) -> Result<i64> {
    db_id(id).ok_or_else(|| Error::Invalid(format!("no channel with id {id}")))
}

fn ch_id_from(row: &SqliteRow, col: &str) -> Result<u64> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v).map_err(|_| Error::Invalid(format!("bad channel id {v} in the database")))
}

fn u8_from(row: &SqliteRow, col: &str) -> Result<u8> {
    let v: i64 = row.try_get(col)?;
    u8::try_from(v).map_err(|_| Error::Invalid(format!("bad {col} {v} in the database")))
}

fn channel_from(row: &SqliteRow) -> Result<Channel> {
    Ok(Channel {
        id: ch_id_from(row, "channel_id")?,
        name: row.try_get("channel_name")?,
    })
}

fn sub_from(row: &SqliteRow) -> Result<SubChannel> {
    Ok(SubChannel {
        ch_id: ch_id_from(row, "channel_id")?,
        sub_id: u8_from(row, "sub_channel_id")?,
        name: row.try_get("sub_channel_name")?,
        lowest_level: u8_from(row, "lowest_access_level")?,
        active_updates: row.try_get("active_updates")?,
    })
}

/// The sub-channel query with a filter appended at compile time.
macro_rules! select_sub {
    ($filter:literal) => {
        concat!(
            "SELECT channel_id, sub_channel_id, sub_channel_name, lowest_access_level, \
             active_updates FROM sub_channels ",
            $filter
        )
    };
}

impl Store {
    /// Creates a channel owned by `owner` and returns its id, or `None` if `owner` already
    /// has `max_per_user` memberships or invites.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the name is taken (case-insensitively) or `owner` does not
    /// exist; otherwise on a database failure.
    pub async fn add_channel(
        &self,
        name: &str,
        owner: &UserId,
        max_per_user: u32,
    ) -> Result<Option<u64>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let res = sqlx::query_scalar::<_, i64>(
            "INSERT INTO channels (channel_name) VALUES (?) RETURNING channel_id",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await;
        let id = match res {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::Invalid("the name is taken".to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        let held: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM channel_members WHERE user_id = ?")
                .bind(&owner.0[..])
                .fetch_one(&mut *tx)
                .await?;
        if held >= i64::from(max_per_user) {
            tx.rollback().await?;
            return Ok(None);
        }
        let res = sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, pending_invite, access_level) \
             VALUES (?, ?, 0, 1)",
        )
        .bind(id)
        .bind(&owner.0[..])
        .execute(&mut *tx)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if is_fk_violation(&e) => {
                return Err(Error::Invalid("no such user".to_owned()));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        let id = u64::try_from(id)
            .map_err(|_| Error::Invalid(format!("bad channel id {id} in the database")))?;
        Ok(Some(id))
    }

    /// The channel with this name, compared case-insensitively.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn channel(&self, name: &str) -> Result<Option<Channel>> {
        let row =
            sqlx::query("SELECT channel_id, channel_name FROM channels WHERE channel_name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(channel_from).transpose()
    }

    /// The channel with this id.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn channel_by_id(&self, id: u64) -> Result<Option<Channel>> {
        let Some(id) = db_id(id) else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT channel_id, channel_name FROM channels WHERE channel_id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(channel_from).transpose()
    }

    /// Deletes a channel with its members, invites, sub-channels and read-only flags.
    /// False if there was no such channel.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn remove_channel(&self, id: u64) -> Result<bool> {
        let Some(id) = db_id(id) else {
            return Ok(false);
        };
        let done = sqlx::query("DELETE FROM channels WHERE channel_id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Renames a channel; its id stays. False if the new name is taken or there is no such
    /// channel.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn rename_channel(&self, id: u64, new_name: &str) -> Result<bool> {
        let Some(id) = db_id(id) else {
            return Ok(false);
        };
        let res = sqlx::query("UPDATE channels SET channel_name = ? WHERE channel_id = ?")
            .bind(new_name)
            .bind(id)
            .execute(&self.pool)
            .await;
        match res {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Channels whose name contains `name_contains` literally (empty matches all) and, if
    /// given, whose id is `id`; by id.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn find_channels(
        &self,
        name_contains: &str,
        id: Option<u64>,
    ) -> Result<Vec<Channel>> {
        let id = match id {
            Some(id) => match db_id(id) {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let rows = sqlx::query(
            "SELECT channel_id, channel_name FROM channels \
             WHERE channel_name LIKE ?1 ESCAPE '\\' AND (?2 IS NULL OR channel_id = ?2) \
             ORDER BY channel_id",
        )
        .bind(format!("%{}%", like_escape(name_contains)))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(channel_from).collect()
    }

    /// The channels `user` belongs to or is invited to, by channel id.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn user_channel_rows(&self, user: &UserId) -> Result<Vec<ChannelRow>> {
        let rows = sqlx::query(
            "SELECT m.channel_id, c.channel_name, m.pending_invite, m.access_level \
             FROM channel_members m JOIN channels c ON c.channel_id = m.channel_id \
             WHERE m.user_id = ? ORDER BY m.channel_id",
        )
        .bind(&user.0[..])
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChannelRow {
                    ch_id: ch_id_from(r, "channel_id")?,
                    channel_name: r.try_get("channel_name")?,
                    pending: r.try_get("pending_invite")?,
                    level: u8_from(r, "access_level")?,
                })
            })
            .collect()
    }

    /// The ids of the channels `user` is a full (not invited) member of, in order.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn member_channels(&self, user: &UserId) -> Result<Vec<u64>> {
        let rows = sqlx::query(
            "SELECT channel_id FROM channel_members WHERE user_id = ? AND pending_invite = 0 \
             ORDER BY channel_id",
        )
        .bind(&user.0[..])
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| ch_id_from(r, "channel_id")).collect()
    }

    /// Whether `user` owns any channel (such a user cannot delete the account).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn owns_a_channel(&self, user: &UserId) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM channel_members \
             WHERE user_id = ? AND access_level = 1 AND pending_invite = 0)",
        )
        .bind(&user.0[..])
        .fetch_one(&self.pool)
        .await?)
    }

    /// The `(level, pending)` of `user`'s row in channel `ch`, if any.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn membership(&self, ch: u64, user: &UserId) -> Result<Option<(u8, bool)>> {
        let Some(ch) = db_id(ch) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT access_level, pending_invite FROM channel_members \
             WHERE channel_id = ? AND user_id = ?",
        )
        .bind(ch)
        .bind(&user.0[..])
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((u8_from(&r, "access_level")?, r.try_get("pending_invite")?)))
            .transpose()
    }

    /// Invites `user` to channel `ch` (pending, level 4). False if the user already has an
    /// invite or a membership there.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the channel or the user does not exist; otherwise on a database
    /// failure.
    pub async fn invite(&self, ch: u64, user: &UserId) -> Result<bool> {
        let ch = db_id_or_invalid(ch)?;
        let res = sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, pending_invite, access_level) \
             VALUES (?, ?, 1, 4)",
        )
        .bind(ch)
        .bind(&user.0[..])
        .execute(&self.pool)
        .await;
        match res {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) if is_fk_violation(&e) => {
                Err(Error::Invalid("no such channel or user".to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Accepts `user`'s invite to channel `ch`, making them a regular member. False if
    /// there is no pending invite.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn accept_invite(&self, ch: u64, user: &UserId) -> Result<bool> {
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        let done = sqlx::query(
            "UPDATE channel_members SET pending_invite = 0 \
             WHERE channel_id = ? AND user_id = ? AND pending_invite = 1",
        )
        .bind(ch)
        .bind(&user.0[..])
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes `user`'s membership or invite in channel `ch`. False if there was none.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn remove_member(&self, ch: u64, user: &UserId) -> Result<bool> {
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        let done = sqlx::query("DELETE FROM channel_members WHERE channel_id = ? AND user_id = ?")
            .bind(ch)
            .bind(&user.0[..])
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the level (1–4) of a full member of channel `ch`. Level 1 makes `user` the
    /// owner: the previous owner, if any and not `user`, drops to level 2 and is returned.
    /// Otherwise returns `None`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if `level` is outside 1–4 or `user` has no full membership in the
    /// channel; otherwise on a database failure.
    pub async fn set_member_level(
        &self,
        ch: u64,
        user: &UserId,
        level: u8,
    ) -> Result<Option<UserId>> {
        if !(1..=4).contains(&level) {
            return Err(Error::Invalid(format!("member level {level} is not 1-4")));
        }
        let not_member = || Error::Invalid("the user is not a member of the channel".to_owned());
        let ch = db_id(ch).ok_or_else(not_member)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut previous = None;
        if level == 1 {
            // The partial unique index one_owner_per_channel: demote first.
            let rows = sqlx::query(
                "UPDATE channel_members SET access_level = 2 \
                 WHERE channel_id = ? AND access_level = 1 AND user_id <> ? RETURNING user_id",
            )
            .bind(ch)
            .bind(&user.0[..])
            .fetch_all(&mut *tx)
            .await?;
            if let Some(row) = rows.first() {
                let id: Vec<u8> = row.try_get("user_id")?;
                previous = Some(UserId::parse(&id)?);
            }
        }
        let done = sqlx::query(
            "UPDATE channel_members SET access_level = ? \
             WHERE channel_id = ? AND user_id = ? AND pending_invite = 0",
        )
        .bind(i64::from(level))
        .bind(ch)
        .bind(&user.0[..])
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(not_member());
        }
        tx.commit().await?;
        Ok(previous)
    }

    /// Members and invitees of channel `ch` whose user and display names contain the given
    /// texts literally (empty matches all), by level then user name.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn members(
        &self,
        ch: u64,
        user_contains: &str,
        disp_contains: &str,
    ) -> Result<Vec<Member>> {
        let Some(ch) = db_id(ch) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT m.user_id, u.user_name, u.display_name, m.pending_invite, m.access_level \
             FROM channel_members m JOIN users u ON u.user_id = m.user_id \
             WHERE m.channel_id = ?1 AND u.user_name LIKE ?2 ESCAPE '\\' \
             AND u.display_name LIKE ?3 ESCAPE '\\' \
             ORDER BY m.access_level, u.user_name",
        )
        .bind(ch)
        .bind(format!("%{}%", like_escape(user_contains)))
        .bind(format!("%{}%", like_escape(disp_contains)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: Vec<u8> = r.try_get("user_id")?;
                Ok(Member {
                    user_id: UserId::parse(&id)?,
                    user_name: r.try_get("user_name")?,
                    display_name: r.try_get("display_name")?,
                    pending: r.try_get("pending_invite")?,
                    level: u8_from(r, "access_level")?,
                })
            })
            .collect()
    }

    /// Creates a sub-channel in channel `ch` with the lowest unused id (from 0), level 4 and
    /// no active updates; returns its id, or `None` if the channel already has `max_subs`
    /// sub-channels or all 256 ids are used.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the name is taken in this channel (case-insensitively) or the
    /// channel does not exist; otherwise on a database failure.
    pub async fn add_sub_channel(&self, ch: u64, name: &str, max_subs: u32) -> Result<Option<u8>> {
        let taken = || Error::Invalid("the sub-channel name is taken".to_owned());
        let ch = db_id_or_invalid(ch)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sub_channels \
             WHERE channel_id = ? AND sub_channel_name = ?)",
        )
        .bind(ch)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if exists {
            return Err(taken());
        }
        let used: Vec<i64> = sqlx::query_scalar(
            "SELECT sub_channel_id FROM sub_channels WHERE channel_id = ? \
             ORDER BY sub_channel_id",
        )
        .bind(ch)
        .fetch_all(&mut *tx)
        .await?;
        if u64::try_from(used.len()).unwrap_or(u64::MAX) >= u64::from(max_subs) {
            tx.rollback().await?;
            return Ok(None);
        }
        // `used` is sorted and distinct: the first id not equal to its position is free.
        let mut free = Some(0u8);
        for id in &used {
            match free {
                Some(f) if i64::from(f) == *id => free = f.checked_add(1),
                _ => break,
            }
        }
        // After 255 is used, checked_add gives None: every id is taken.
        let Some(sub) = free else {
            tx.rollback().await?;
            return Ok(None);
        };
        let res = sqlx::query(
            "INSERT INTO sub_channels (channel_id, sub_channel_id, sub_channel_name, \
             lowest_access_level, active_updates) VALUES (?, ?, ?, 4, 0)",
        )
        .bind(ch)
        .bind(i64::from(sub))
        .bind(name)
        .execute(&mut *tx)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(taken()),
            Err(e) if is_fk_violation(&e) => {
                return Err(Error::Invalid("no such channel".to_owned()));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(Some(sub))
    }

    /// The sub-channel of channel `ch` with this name, compared case-insensitively.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn sub_channel(&self, ch: u64, name: &str) -> Result<Option<SubChannel>> {
        let Some(ch) = db_id(ch) else {
            return Ok(None);
        };
        let row = sqlx::query(select_sub!("WHERE channel_id = ? AND sub_channel_name = ?"))
            .bind(ch)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(sub_from).transpose()
    }

    /// The sub-channel of channel `ch` with this id.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn sub_channel_by_id(&self, ch: u64, sub: u8) -> Result<Option<SubChannel>> {
        let Some(ch) = db_id(ch) else {
            return Ok(None);
        };
        let row = sqlx::query(select_sub!("WHERE channel_id = ? AND sub_channel_id = ?"))
            .bind(ch)
            .bind(i64::from(sub))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(sub_from).transpose()
    }

    /// Every sub-channel of channel `ch`, by sub-channel id.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn sub_channels(&self, ch: u64) -> Result<Vec<SubChannel>> {
        let Some(ch) = db_id(ch) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(select_sub!("WHERE channel_id = ? ORDER BY sub_channel_id"))
            .bind(ch)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(sub_from).collect()
    }

    /// Deletes a sub-channel. Read-only flags on its id stay (COMMANDS.md §2.5). False if
    /// there was no such sub-channel.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn remove_sub_channel(&self, ch: u64, sub: u8) -> Result<bool> {
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        let done =
            sqlx::query("DELETE FROM sub_channels WHERE channel_id = ? AND sub_channel_id = ?")
                .bind(ch)
                .bind(i64::from(sub))
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Renames a sub-channel; its id stays. False if the new name is taken in the channel
    /// or there is no such sub-channel.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn rename_sub_channel(&self, ch: u64, sub: u8, new_name: &str) -> Result<bool> {
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        let res = sqlx::query(
            "UPDATE sub_channels SET sub_channel_name = ? \
             WHERE channel_id = ? AND sub_channel_id = ?",
        )
        .bind(new_name)
        .bind(ch)
        .bind(i64::from(sub))
        .execute(&self.pool)
        .await;
        match res {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets the lowest access level (1–5) of a sub-channel. False if there is no such
    /// sub-channel.
    ///
    /// # Errors
    /// [`Error::Invalid`] if `level` is outside 1–5; otherwise on a database failure.
    pub async fn set_sub_channel_level(&self, ch: u64, sub: u8, level: u8) -> Result<bool> {
        if !(1..=5).contains(&level) {
            return Err(Error::Invalid(format!(
                "sub-channel level {level} is not 1-5"
            )));
        }
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        let done = sqlx::query(
            "UPDATE sub_channels SET lowest_access_level = ? \
             WHERE channel_id = ? AND sub_channel_id = ?",
        )
        .bind(i64::from(level))
        .bind(ch)
        .bind(i64::from(sub))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets or clears a sub-channel's active-update flag. False if there is no such
    /// sub-channel.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_sub_channel_active(&self, ch: u64, sub: u8, on: bool) -> Result<bool> {
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        let done = sqlx::query(
            "UPDATE sub_channels SET active_updates = ? \
             WHERE channel_id = ? AND sub_channel_id = ?",
        )
        .bind(on)
        .bind(ch)
        .bind(i64::from(sub))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds a read-only flag; the sub-channel id need not exist. False if the flag exists.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the channel does not exist; otherwise on a database failure.
    pub async fn add_rdonly_flag(&self, ch: u64, sub: u8, level: u8) -> Result<bool> {
        let ch = db_id_or_invalid(ch)?;
        let res = sqlx::query(
            "INSERT INTO read_only_flags (channel_id, sub_channel_id, access_level) \
             VALUES (?, ?, ?)",
        )
        .bind(ch)
        .bind(i64::from(sub))
        .bind(i64::from(level))
        .execute(&self.pool)
        .await;
        match res {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) if is_fk_violation(&e) => Err(Error::Invalid("no such channel".to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a read-only flag. False if there was none.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn remove_rdonly_flag(&self, ch: u64, sub: u8, level: u8) -> Result<bool> {
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        let done = sqlx::query(
            "DELETE FROM read_only_flags \
             WHERE channel_id = ? AND sub_channel_id = ? AND access_level = ?",
        )
        .bind(ch)
        .bind(i64::from(sub))
        .bind(i64::from(level))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every read-only flag of channel `ch`, by sub-channel id then level.
    ///
    /// # Errors
    /// [`Error::Invalid`] if a stored sub-channel id or level is out of range; otherwise on
    /// a database failure.
    pub async fn rdonly_flags(&self, ch: u64) -> Result<Vec<RdonlyFlag>> {
        let Some(ch) = db_id(ch) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT f.channel_id, c.channel_name, f.sub_channel_id, f.access_level \
             FROM read_only_flags f JOIN channels c ON c.channel_id = f.channel_id \
             WHERE f.channel_id = ? ORDER BY f.sub_channel_id, f.access_level",
        )
        .bind(ch)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RdonlyFlag {
                    ch_id: ch_id_from(r, "channel_id")?,
                    channel_name: r.try_get("channel_name")?,
                    sub_id: u8_from(r, "sub_channel_id")?,
                    level: u8_from(r, "access_level")?,
                })
            })
            .collect()
    }

    /// Whether the read-only flag `(ch, sub, level)` exists.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn has_rdonly_flag(&self, ch: u64, sub: u8, level: u8) -> Result<bool> {
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM read_only_flags \
             WHERE channel_id = ? AND sub_channel_id = ? AND access_level = ?)",
        )
        .bind(ch)
        .bind(i64::from(sub))
        .bind(i64::from(level))
        .fetch_one(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::temp_store;
    use super::*;

    async fn user(store: &Store, name: &str) -> UserId {
        let email = format!("{name}@example.org");
        store
            .create_user(name, Some(&email), "users", "phc", false, false)
            .await
            .unwrap()
    }

    async fn count(store: &Store, sql: &'static str, ch: u64) -> i64 {
        sqlx::query_scalar(sql)
            .bind(i64::try_from(ch).unwrap())
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn add_channel_owner_limit_and_taken_names() {
        let (store, _dir) = temp_store().await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let lobby = store
            .add_channel("Lobby", &alice, 2)
            .await
            .unwrap()
            .unwrap();
        assert!(lobby >= 1);
        assert_eq!(
            store.membership(lobby, &alice).await.unwrap(),
            Some((1, false))
        );
        let expected = Channel {
            id: lobby,
            name: "Lobby".to_owned(),
        };
        assert_eq!(
            store.channel("LOBBY").await.unwrap(),
            Some(expected.clone())
        );
        assert_eq!(store.channel_by_id(lobby).await.unwrap(), Some(expected));
        assert_eq!(store.channel_by_id(u64::MAX).await.unwrap(), None);
        assert!(store.channel("Lobb").await.unwrap().is_none());
        assert!(matches!(
            store.add_channel("lOBBY", &bob, 10).await,
            Err(Error::Invalid(m)) if m.contains("taken")
        ));
        assert!(store.owns_a_channel(&alice).await.unwrap());
        assert!(!store.owns_a_channel(&bob).await.unwrap());

        let second = store
            .add_channel("Second", &alice, 2)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(second, lobby);
        // At the limit: nothing is created, not even the channel row.
        assert_eq!(store.add_channel("Third", &alice, 2).await.unwrap(), None);
        assert!(store.channel("Third").await.unwrap().is_none());
        // A taken name is refused before the limit is looked at.
        assert!(matches!(
            store.add_channel("second", &alice, 2).await,
            Err(Error::Invalid(_))
        ));
        // Pending invites count towards the limit.
        assert!(store.invite(lobby, &bob).await.unwrap());
        assert_eq!(store.add_channel("Bobs", &bob, 1).await.unwrap(), None);
        let bobs = store.add_channel("Bobs", &bob, 2).await.unwrap().unwrap();
        assert_eq!(store.member_channels(&bob).await.unwrap(), [bobs]);
        assert_eq!(
            store.member_channels(&alice).await.unwrap(),
            [lobby, second]
        );
        // An unknown owner is refused and leaves no channel behind.
        assert!(matches!(
            store.add_channel("Ghost", &UserId([7; 32]), 5).await,
            Err(Error::Invalid(_))
        ));
        assert!(store.channel("Ghost").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn rename_channel_refuses_taken_names() {
        let (store, _dir) = temp_store().await;
        let alice = user(&store, "alice").await;
        let one = store.add_channel("One", &alice, 10).await.unwrap().unwrap();
        store.add_channel("Two", &alice, 10).await.unwrap().unwrap();
        assert!(!store.rename_channel(one, "TWO").await.unwrap());
        assert!(store.rename_channel(one, "Hall").await.unwrap());
        assert!(
            store.rename_channel(one, "HALL").await.unwrap(),
            "case change of itself"
        );
        assert_eq!(
            store.channel_by_id(one).await.unwrap().unwrap().name,
            "HALL"
        );
        assert!(store.channel("One").await.unwrap().is_none());
        assert!(!store.rename_channel(9999, "Other").await.unwrap());
        assert!(!store.rename_channel(u64::MAX, "Other").await.unwrap());
    }

    #[tokio::test]
    async fn remove_channel_cascades() {
        let (store, _dir) = temp_store().await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let ch = store
            .add_channel("Doomed", &alice, 10)
            .await
            .unwrap()
            .unwrap();
        let keep = store
            .add_channel("Kept", &alice, 10)
            .await
            .unwrap()
            .unwrap();
        assert!(store.invite(ch, &bob).await.unwrap());
        assert_eq!(
            store.add_sub_channel(ch, "main", 50).await.unwrap(),
            Some(0)
        );
        assert!(store.add_rdonly_flag(ch, 0, 4).await.unwrap());
        assert!(store.add_rdonly_flag(keep, 0, 4).await.unwrap());

        assert!(store.remove_channel(ch).await.unwrap());
        assert!(!store.remove_channel(ch).await.unwrap());
        assert!(store.channel_by_id(ch).await.unwrap().is_none());
        assert_eq!(store.membership(ch, &alice).await.unwrap(), None);
        assert_eq!(store.membership(ch, &bob).await.unwrap(), None);
        assert!(store.sub_channels(ch).await.unwrap().is_empty());
        assert!(store.rdonly_flags(ch).await.unwrap().is_empty());
        let sql = "SELECT COUNT(*) FROM channel_members WHERE channel_id = ?";
        assert_eq!(count(&store, sql, ch).await, 0);
        let sql = "SELECT COUNT(*) FROM sub_channels WHERE channel_id = ?";
        assert_eq!(count(&store, sql, ch).await, 0);
        let sql = "SELECT COUNT(*) FROM read_only_flags WHERE channel_id = ?";
        assert_eq!(count(&store, sql, ch).await, 0);
        // The other channel is untouched.
        assert!(store.has_rdonly_flag(keep, 0, 4).await.unwrap());
        assert_eq!(store.member_channels(&alice).await.unwrap(), [keep]);
        assert!(!store.remove_channel(u64::MAX).await.unwrap());
    }

    #[tokio::test]
    async fn invite_accept_and_remove() {
        let (store, _dir) = temp_store().await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let ch = store
            .add_channel("Club", &alice, 10)
            .await
            .unwrap()
            .unwrap();

        assert!(store.invite(ch, &bob).await.unwrap());
        assert!(!store.invite(ch, &bob).await.unwrap(), "second invite");
        assert!(!store.invite(ch, &alice).await.unwrap(), "already a member");
        assert_eq!(store.membership(ch, &bob).await.unwrap(), Some((4, true)));
        assert!(store.member_channels(&bob).await.unwrap().is_empty());
        assert_eq!(
            store.user_channel_rows(&bob).await.unwrap(),
            [ChannelRow {
                ch_id: ch,
                channel_name: "Club".to_owned(),
                pending: true,
                level: 4,
            }]
        );

        assert!(store.accept_invite(ch, &bob).await.unwrap());
        assert!(
            !store.accept_invite(ch, &bob).await.unwrap(),
            "no pending invite"
        );
        assert!(!store.accept_invite(ch, &alice).await.unwrap());
        assert_eq!(store.membership(ch, &bob).await.unwrap(), Some((4, false)));
        assert_eq!(store.member_channels(&bob).await.unwrap(), [ch]);
        assert!(store.remove_member(ch, &bob).await.unwrap());
        assert!(!store.remove_member(ch, &bob).await.unwrap());
        assert_eq!(store.membership(ch, &bob).await.unwrap(), None);

        // Declining or cancelling an invite deletes the pending row.
        assert!(store.invite(ch, &bob).await.unwrap());
        assert!(store.remove_member(ch, &bob).await.unwrap());
        assert!(store.user_channel_rows(&bob).await.unwrap().is_empty());

        assert!(matches!(
            store.invite(ch, &UserId([9; 32])).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            store.invite(ch + 100, &bob).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            store.invite(u64::MAX, &bob).await,
            Err(Error::Invalid(_))
        ));
        assert_eq!(store.membership(u64::MAX, &bob).await.unwrap(), None);
    }

    #[tokio::test]
    async fn set_member_level_transfers_ownership() {
        let (store, _dir) = temp_store().await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let carol = user(&store, "carol").await;
        let dave = user(&store, "dave").await;
        let ch = store
            .add_channel("Guild", &alice, 10)
            .await
            .unwrap()
            .unwrap();
        for u in [&bob, &carol] {
            assert!(store.invite(ch, u).await.unwrap());
            assert!(store.accept_invite(ch, u).await.unwrap());
        }
        assert!(store.invite(ch, &dave).await.unwrap());

        assert_eq!(store.set_member_level(ch, &bob, 3).await.unwrap(), None);
        assert_eq!(store.membership(ch, &bob).await.unwrap(), Some((3, false)));

        assert_eq!(
            store.set_member_level(ch, &carol, 1).await.unwrap(),
            Some(alice)
        );
        assert_eq!(
            store.membership(ch, &carol).await.unwrap(),
            Some((1, false))
        );
        assert_eq!(
            store.membership(ch, &alice).await.unwrap(),
            Some((2, false))
        );
        let owners: Vec<UserId> = store
            .members(ch, "", "")
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.level == 1)
            .map(|m| m.user_id)
            .collect();
        assert_eq!(owners, [carol]);
        assert!(store.owns_a_channel(&carol).await.unwrap());
        assert!(!store.owns_a_channel(&alice).await.unwrap());

        // Already the owner: nothing changes hands.
        assert_eq!(store.set_member_level(ch, &carol, 1).await.unwrap(), None);
        assert_eq!(
            store.membership(ch, &alice).await.unwrap(),
            Some((2, false))
        );

        // A pending invitee or a stranger has no full membership; nothing changes.
        for u in [&dave, &UserId([3; 32])] {
            assert!(matches!(
                store.set_member_level(ch, u, 1).await,
                Err(Error::Invalid(_))
            ));
        }
        assert_eq!(
            store.membership(ch, &carol).await.unwrap(),
            Some((1, false))
        );
        assert_eq!(store.membership(ch, &dave).await.unwrap(), Some((4, true)));
        assert!(matches!(
            store.set_member_level(ch, &bob, 5).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            store.set_member_level(u64::MAX, &bob, 2).await,
            Err(Error::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn sub_channels_ids_limits_and_names() {
        let (store, _dir) = temp_store().await;
        let alice = user(&store, "alice").await;
        let ch = store
            .add_channel("Base", &alice, 10)
            .await
            .unwrap()
            .unwrap();
        for (name, id) in [("a", 0), ("b", 1), ("c", 2)] {
            assert_eq!(store.add_sub_channel(ch, name, 4).await.unwrap(), Some(id));
        }
        assert!(matches!(
            store.add_sub_channel(ch, "B", 4).await,
            Err(Error::Invalid(m)) if m.contains("taken")
        ));
        assert!(store.remove_sub_channel(ch, 1).await.unwrap());
        assert!(!store.remove_sub_channel(ch, 1).await.unwrap());
        assert_eq!(store.add_sub_channel(ch, "d", 4).await.unwrap(), Some(1));
        assert_eq!(store.add_sub_channel(ch, "e", 4).await.unwrap(), Some(3));
        assert_eq!(
            store.add_sub_channel(ch, "f", 4).await.unwrap(),
            None,
            "max_subs"
        );
        assert!(store.sub_channel(ch, "f").await.unwrap().is_none());
        // The name check comes first.
        assert!(matches!(
            store.add_sub_channel(ch, "E", 4).await,
            Err(Error::Invalid(_))
        ));

        let d = SubChannel {
            ch_id: ch,
            sub_id: 1,
            name: "d".to_owned(),
            lowest_level: 4,
            active_updates: false,
        };
        assert_eq!(store.sub_channel(ch, "D").await.unwrap(), Some(d.clone()));
        assert_eq!(store.sub_channel_by_id(ch, 1).await.unwrap(), Some(d));
        assert_eq!(store.sub_channel_by_id(ch, 200).await.unwrap(), None);
        let ids: Vec<u8> = store
            .sub_channels(ch)
            .await
            .unwrap()
            .iter()
            .map(|s| s.sub_id)
            .collect();
        assert_eq!(ids, [0, 1, 2, 3]);

        assert!(
            !store.rename_sub_channel(ch, 1, "A").await.unwrap(),
            "taken"
        );
        assert!(store.rename_sub_channel(ch, 1, "dd").await.unwrap());
        assert!(
            !store.rename_sub_channel(ch, 9, "zz").await.unwrap(),
            "no such sub"
        );
        assert!(store.set_sub_channel_level(ch, 1, 5).await.unwrap());
        assert!(!store.set_sub_channel_level(ch, 9, 5).await.unwrap());
        assert!(matches!(
            store.set_sub_channel_level(ch, 1, 6).await,
            Err(Error::Invalid(_))
        ));
        assert!(store.set_sub_channel_active(ch, 1, true).await.unwrap());
        assert!(!store.set_sub_channel_active(ch, 9, true).await.unwrap());
        assert_eq!(
            store.sub_channel_by_id(ch, 1).await.unwrap(),
            Some(SubChannel {
                ch_id: ch,
                sub_id: 1,
                name: "dd".to_owned(),
                lowest_level: 5,
                active_updates: true,
            })
        );

        // The same name may be used in another channel.
        let other = store
            .add_channel("Other", &alice, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.add_sub_channel(other, "a", 50).await.unwrap(),
            Some(0)
        );
        assert!(matches!(
            store.add_sub_channel(other + 100, "a", 50).await,
            Err(Error::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn sub_channel_ids_run_out_at_256() {
        let (store, _dir) = temp_store().await;
        let alice = user(&store, "alice").await;
        let ch = store
            .add_channel("Full", &alice, 10)
            .await
            .unwrap()
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 254) \
             INSERT INTO sub_channels (channel_id, sub_channel_id, sub_channel_name) \
             SELECT ?, i, 's' || i FROM n",
        )
        .bind(i64::try_from(ch).unwrap())
        .execute(&store.pool)
        .await
        .unwrap();
        assert_eq!(
            store.add_sub_channel(ch, "last", 1000).await.unwrap(),
            Some(255)
        );
        assert_eq!(store.add_sub_channel(ch, "more", 1000).await.unwrap(), None);
        assert_eq!(store.sub_channels(ch).await.unwrap().len(), 256);
    }

    #[tokio::test]
    async fn rdonly_flags_outlive_their_sub_channel() {
        let (store, _dir) = temp_store().await;
        let alice = user(&store, "alice").await;
        let ch = store
            .add_channel("Flags", &alice, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.add_sub_channel(ch, "x", 50).await.unwrap(), Some(0));
        assert!(store.add_rdonly_flag(ch, 0, 4).await.unwrap());
        assert!(!store.add_rdonly_flag(ch, 0, 4).await.unwrap(), "exists");
        assert!(store.add_rdonly_flag(ch, 0, 2).await.unwrap());
        assert!(
            store.add_rdonly_flag(ch, 200, 5).await.unwrap(),
            "sub need not exist"
        );
        assert!(store.has_rdonly_flag(ch, 0, 4).await.unwrap());
        assert!(!store.has_rdonly_flag(ch, 0, 3).await.unwrap());

        assert!(store.remove_sub_channel(ch, 0).await.unwrap());
        assert!(store.has_rdonly_flag(ch, 0, 4).await.unwrap());
        // Re-created under the same id, the sub-channel is read-only again.
        assert_eq!(store.add_sub_channel(ch, "y", 50).await.unwrap(), Some(0));
        let flag = |sub_id, level| RdonlyFlag {
            ch_id: ch,
            channel_name: "Flags".to_owned(),
            sub_id,
            level,
        };
        assert_eq!(
            store.rdonly_flags(ch).await.unwrap(),
            [flag(0, 2), flag(0, 4), flag(200, 5)]
        );

        assert!(store.remove_rdonly_flag(ch, 0, 4).await.unwrap());
        assert!(!store.remove_rdonly_flag(ch, 0, 4).await.unwrap());
        assert!(!store.has_rdonly_flag(ch, 0, 4).await.unwrap());
        assert_eq!(
            store.rdonly_flags(ch).await.unwrap(),
            [flag(0, 2), flag(200, 5)]
        );
        assert!(matches!(
            store.add_rdonly_flag(ch + 100, 0, 4).await,
            Err(Error::Invalid(_))
        ));
        assert!(!store.has_rdonly_flag(u64::MAX, 0, 4).await.unwrap());
    }

    #[tokio::test]
    async fn filters_are_literal() {
        let (store, _dir) = temp_store().await;
        let owner = user(&store, "owner").await;
        let under = user(&store, "user_1").await;
        let plain = user(&store, "userx1").await;
        let ab = store
            .add_channel("a_b1", &owner, 10)
            .await
            .unwrap()
            .unwrap();
        let axb = store
            .add_channel("axb1", &owner, 10)
            .await
            .unwrap()
            .unwrap();
        let pct = store
            .add_channel("pct%x", &owner, 10)
            .await
            .unwrap()
            .unwrap();
        let names = |v: Vec<Channel>| v.into_iter().map(|c| c.name).collect::<Vec<_>>();

        assert_eq!(
            names(store.find_channels("", None).await.unwrap()),
            ["a_b1", "axb1", "pct%x"]
        );
        assert_eq!(
            names(store.find_channels("_", None).await.unwrap()),
            ["a_b1"]
        );
        assert_eq!(
            names(store.find_channels("%", None).await.unwrap()),
            ["pct%x"]
        );
        assert_eq!(
            names(store.find_channels("B1", None).await.unwrap()),
            ["a_b1", "axb1"]
        );
        assert!(
            store
                .find_channels("' OR 1=1 --", None)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            names(store.find_channels("", Some(axb)).await.unwrap()),
            ["axb1"]
        );
        assert!(
            store
                .find_channels("pct", Some(ab))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            names(store.find_channels("pct", Some(pct)).await.unwrap()),
            ["pct%x"]
        );
        assert!(
            store
                .find_channels("", Some(u64::MAX))
                .await
                .unwrap()
                .is_empty()
        );

        store.set_display_name(&under, "50%").await.unwrap();
        store.set_display_name(&plain, "500").await.unwrap();
        for u in [&under, &plain] {
            assert!(store.invite(ab, u).await.unwrap());
        }
        assert!(store.accept_invite(ab, &plain).await.unwrap());
        assert!(
            store
                .set_member_level(ab, &plain, 3)
                .await
                .unwrap()
                .is_none()
        );
        let members = store.members(ab, "", "").await.unwrap();
        let order: Vec<(&str, u8, bool)> = members
            .iter()
            .map(|m| (m.user_name.as_str(), m.level, m.pending))
            .collect();
        assert_eq!(
            order,
            [
                ("owner", 1, false),
                ("userx1", 3, false),
                ("user_1", 4, true)
            ]
        );
        let user1 = store.members(ab, "_", "").await.unwrap();
        assert_eq!(user1.len(), 1);
        assert_eq!(
            user1[0],
            Member {
                user_id: under,
                user_name: "user_1".to_owned(),
                display_name: "50%".to_owned(),
                pending: true,
                level: 4,
            }
        );
        let pct_disp = store.members(ab, "", "%").await.unwrap();
        assert_eq!(pct_disp.len(), 1);
        assert_eq!(pct_disp[0].user_id, under);
        assert_eq!(store.members(ab, "user", "50").await.unwrap().len(), 2);
        assert!(store.members(ab, "user", "0%0").await.unwrap().is_empty());
        assert!(store.members(axb, "user", "").await.unwrap().is_empty());
        assert!(store.members(u64::MAX, "", "").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn user_channel_rows_match_the_user_exactly() {
        let (store, _dir) = temp_store().await;
        let bob = user(&store, "bob").await;
        let bobby = user(&store, "bobby").await;
        let mine = store
            .add_channel("BobsPlace", &bob, 10)
            .await
            .unwrap()
            .unwrap();
        let theirs = store
            .add_channel("BobbysPlace", &bobby, 10)
            .await
            .unwrap()
            .unwrap();
        let invited = store
            .add_channel("Elsewhere", &bobby, 10)
            .await
            .unwrap()
            .unwrap();
        assert!(store.invite(invited, &bob).await.unwrap());
        assert_eq!(
            store.user_channel_rows(&bob).await.unwrap(),
            [
                ChannelRow {
                    ch_id: mine,
                    channel_name: "BobsPlace".to_owned(),
                    pending: false,
                    level: 1,
                },
                ChannelRow {
                    ch_id: invited,
                    channel_name: "Elsewhere".to_owned(),
                    pending: true,
                    level: 4,
                },
            ]
        );
        let ids: Vec<u64> = store
            .user_channel_rows(&bobby)
            .await
            .unwrap()
            .iter()
            .map(|r| r.ch_id)
            .collect();
        assert_eq!(ids, [theirs, invited]);
        assert!(
            store
                .user_channel_rows(&UserId([1; 32]))
                .await
                .unwrap()
                .is_empty()
        );
    }
}
