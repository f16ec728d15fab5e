//! Channels, their members and invites, sub-channels and read-only flags (COMMANDS.md §2,
//! §3.3–3.4). No access rules here: callers check member levels (§2.3) and validate names
//! and levels before calling.
//!
//! Channel ids are `u64` on the wire and signed 64-bit integers in the table; an id that
//! does not fit an `i64` cannot name a row, so lookups treat it as "not found" and inserts
//! refuse it with [`Error::Invalid`]. Values read back are checked with `try_from`.

use mrci_proto::{ChLevel, UserId};
use sqlx::{Row, any::AnyRow};

use super::{
    Flag, Store, WriteLock, backend::flag, contains, is_fk_violation, is_unique_violation,
};
use crate::{Error, Result};

/// One channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Channel id (≥ 1), assigned by the database; it never changes.
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
    /// Member level, owner to regular.
    pub level: ChLevel,
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
    /// The weakest level allowed to open it; [`ChLevel::PUBLIC`] makes it public.
    pub lowest_level: ChLevel,
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
    /// The level it applies to (public included).
    pub level: ChLevel,
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
    /// Member level, owner to regular.
    pub level: ChLevel,
}

/// The table form of a channel id, or `None` if no row can have it.
fn db_id(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// The table form of a channel id for inserts.
fn db_id_or_invalid(id: u64) -> Result<i64> {
    db_id(id).ok_or_else(|| Error::Invalid(format!("no channel with id {id}")))
}

fn ch_id_from(row: &AnyRow, col: &str) -> Result<u64> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v).map_err(|_| Error::Invalid(format!("bad channel id {v} in the database")))
}

fn u8_from(row: &AnyRow, col: &str) -> Result<u8> {
    let v: i64 = row.try_get(col)?;
    u8::try_from(v).map_err(|_| Error::Invalid(format!("bad {col} {v} in the database")))
}

/// A level column.
pub(super) fn level_from(row: &AnyRow, col: &str) -> Result<ChLevel> {
    let v: i64 = row.try_get(col)?;
    u8::try_from(v)
        .ok()
        .and_then(|n| ChLevel::new(n).ok())
        .ok_or_else(|| Error::Invalid(format!("bad {col} {v} in the database")))
}

/// A level as it is bound.
pub(super) fn db_level(level: ChLevel) -> i64 {
    i64::from(level.get())
}

fn channel_from(row: &AnyRow) -> Result<Channel> {
    Ok(Channel {
        id: ch_id_from(row, "channel_id")?,
        name: row.try_get("channel_name")?,
    })
}

fn sub_from(row: &AnyRow) -> Result<SubChannel> {
    Ok(SubChannel {
        ch_id: ch_id_from(row, "channel_id")?,
        sub_id: u8_from(row, "sub_channel_id")?,
        name: row.try_get("sub_channel_name")?,
        lowest_level: level_from(row, "lowest_access_level")?,
        active_updates: flag(row, "active_updates")?,
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
        let mut tx = self.begin_write(WriteLock::User(owner)).await?;
        let res = sqlx::query_scalar::<_, i64>(
            "INSERT INTO channels (channel_name) VALUES ($1) RETURNING channel_id",
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
            sqlx::query_scalar("SELECT COUNT(*) FROM channel_members WHERE user_id = $1")
                .bind(&owner.0[..])
                .fetch_one(&mut *tx)
                .await?;
        if held >= i64::from(max_per_user) {
            tx.rollback().await?;
            return Ok(None);
        }
        let res = sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, pending_invite, access_level) \
             VALUES ($1, $2, FALSE, $3)",
        )
        .bind(id)
        .bind(&owner.0[..])
        .bind(db_level(ChLevel::OWNER))
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
        let row = sqlx::query(self.sql(
            "SELECT channel_id, channel_name FROM channels WHERE channel_name = $1",
            "SELECT channel_id, channel_name FROM channels WHERE lower(channel_name) = lower($1)",
        ))
        .bind(name)
        .fetch_optional(self.db())
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
        let row =
            sqlx::query("SELECT channel_id, channel_name FROM channels WHERE channel_id = $1")
                .bind(id)
                .fetch_optional(self.db())
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
        let done = sqlx::query("DELETE FROM channels WHERE channel_id = $1")
            .bind(id)
            .execute(self.db())
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
        let res = sqlx::query("UPDATE channels SET channel_name = $1 WHERE channel_id = $2")
            .bind(new_name)
            .bind(id)
            .execute(self.db())
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
             WHERE lower(channel_name) LIKE lower($1) ESCAPE '\\' \
             AND ($2 IS NULL OR channel_id = $2) ORDER BY channel_id",
        )
        .bind(contains(name_contains))
        .bind(id)
        .fetch_all(self.db())
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
             WHERE m.user_id = $1 ORDER BY m.channel_id",
        )
        .bind(&user.0[..])
        .fetch_all(self.db())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChannelRow {
                    ch_id: ch_id_from(r, "channel_id")?,
                    channel_name: r.try_get("channel_name")?,
                    pending: flag(r, "pending_invite")?,
                    level: level_from(r, "access_level")?,
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
            "SELECT channel_id FROM channel_members WHERE user_id = $1 AND pending_invite = FALSE \
             ORDER BY channel_id",
        )
        .bind(&user.0[..])
        .fetch_all(self.db())
        .await?;
        rows.iter().map(|r| ch_id_from(r, "channel_id")).collect()
    }

    /// Whether `user` owns any channel (such a user cannot delete the account).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn owns_a_channel(&self, user: &UserId) -> Result<bool> {
        let owns: Flag = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM channel_members \
             WHERE user_id = $1 AND access_level = $2 AND pending_invite = FALSE)",
        )
        .bind(&user.0[..])
        .bind(db_level(ChLevel::OWNER))
        .fetch_one(self.db())
        .await?;
        Ok(owns.0)
    }

    /// The `(level, pending)` of `user`'s row in channel `ch`, if any.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn membership(&self, ch: u64, user: &UserId) -> Result<Option<(ChLevel, bool)>> {
        let Some(ch) = db_id(ch) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT access_level, pending_invite FROM channel_members \
             WHERE channel_id = $1 AND user_id = $2",
        )
        .bind(ch)
        .bind(&user.0[..])
        .fetch_optional(self.db())
        .await?;
        row.map(|r| Ok((level_from(&r, "access_level")?, flag(&r, "pending_invite")?)))
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
             VALUES ($1, $2, TRUE, $3)",
        )
        .bind(ch)
        .bind(&user.0[..])
        .bind(db_level(ChLevel::REGULAR))
        .execute(self.db())
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
            "UPDATE channel_members SET pending_invite = FALSE \
             WHERE channel_id = $1 AND user_id = $2 AND pending_invite = TRUE",
        )
        .bind(ch)
        .bind(&user.0[..])
        .execute(self.db())
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
        let done =
            sqlx::query("DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2")
                .bind(ch)
                .bind(&user.0[..])
                .execute(self.db())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the level of a full member of channel `ch`. [`ChLevel::OWNER`] makes `user` the
    /// owner: the previous owner, if any and not `user`, becomes an admin and is returned.
    /// Otherwise returns `None`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if `level` is not a member's level or `user` has no full membership
    /// in the channel; otherwise on a database failure.
    pub async fn set_member_level(
        &self,
        ch: u64,
        user: &UserId,
        level: ChLevel,
    ) -> Result<Option<UserId>> {
        if !level.is_member() {
            return Err(Error::Invalid(format!("member level {level} is not 1-4")));
        }
        let not_member = || Error::Invalid("the user is not a member of the channel".to_owned());
        let ch = db_id(ch).ok_or_else(not_member)?;
        let mut tx = self.begin_write(WriteLock::Channel(ch)).await?;
        let mut previous = None;
        if level == ChLevel::OWNER {
            // The partial unique index one_owner_per_channel: demote first.
            let rows = sqlx::query(
                "UPDATE channel_members SET access_level = $3 \
                 WHERE channel_id = $1 AND access_level = $4 AND user_id <> $2 RETURNING user_id",
            )
            .bind(ch)
            .bind(&user.0[..])
            .bind(db_level(ChLevel::ADMIN))
            .bind(db_level(ChLevel::OWNER))
            .fetch_all(&mut *tx)
            .await?;
            if let Some(row) = rows.first() {
                let id: Vec<u8> = row.try_get("user_id")?;
                previous = Some(UserId::parse(&id)?);
            }
        }
        let done = sqlx::query(
            "UPDATE channel_members SET access_level = $1 \
             WHERE channel_id = $2 AND user_id = $3 AND pending_invite = FALSE",
        )
        .bind(db_level(level))
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
             WHERE m.channel_id = $1 AND lower(u.user_name) LIKE lower($2) ESCAPE '\\' \
             AND lower(u.display_name) LIKE lower($3) ESCAPE '\\' \
             ORDER BY m.access_level, lower(u.user_name)",
        )
        .bind(ch)
        .bind(contains(user_contains))
        .bind(contains(disp_contains))
        .fetch_all(self.db())
        .await?;
        rows.iter()
            .map(|r| {
                let id: Vec<u8> = r.try_get("user_id")?;
                Ok(Member {
                    user_id: UserId::parse(&id)?,
                    user_name: r.try_get("user_name")?,
                    display_name: r.try_get("display_name")?,
                    pending: flag(r, "pending_invite")?,
                    level: level_from(r, "access_level")?,
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
        let mut tx = self.begin_write(WriteLock::Channel(ch)).await?;
        let exists: Flag = sqlx::query_scalar(self.sql(
            "SELECT EXISTS (SELECT 1 FROM sub_channels \
             WHERE channel_id = $1 AND sub_channel_name = $2)",
            "SELECT EXISTS (SELECT 1 FROM sub_channels \
             WHERE channel_id = $1 AND lower(sub_channel_name) = lower($2))",
        ))
        .bind(ch)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if exists.0 {
            return Err(taken());
        }
        let used: Vec<i64> = sqlx::query_scalar(
            "SELECT sub_channel_id FROM sub_channels WHERE channel_id = $1 \
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
             lowest_access_level, active_updates) VALUES ($1, $2, $3, $4, FALSE)",
        )
        .bind(ch)
        .bind(i64::from(sub))
        .bind(name)
        .bind(db_level(ChLevel::REGULAR))
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
        let row = sqlx::query(self.sql(
            select_sub!("WHERE channel_id = $1 AND sub_channel_name = $2"),
            select_sub!("WHERE channel_id = $1 AND lower(sub_channel_name) = lower($2)"),
        ))
        .bind(ch)
        .bind(name)
        .fetch_optional(self.db())
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
        let row = sqlx::query(select_sub!("WHERE channel_id = $1 AND sub_channel_id = $2"))
            .bind(ch)
            .bind(i64::from(sub))
            .fetch_optional(self.db())
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
        let rows = sqlx::query(select_sub!("WHERE channel_id = $1 ORDER BY sub_channel_id"))
            .bind(ch)
            .fetch_all(self.db())
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
            sqlx::query("DELETE FROM sub_channels WHERE channel_id = $1 AND sub_channel_id = $2")
                .bind(ch)
                .bind(i64::from(sub))
                .execute(self.db())
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
            "UPDATE sub_channels SET sub_channel_name = $1 \
             WHERE channel_id = $2 AND sub_channel_id = $3",
        )
        .bind(new_name)
        .bind(ch)
        .bind(i64::from(sub))
        .execute(self.db())
        .await;
        match res {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets the weakest level that may open a sub-channel. False if there is no such
    /// sub-channel.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_sub_channel_level(&self, ch: u64, sub: u8, level: ChLevel) -> Result<bool> {
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        let done = sqlx::query(
            "UPDATE sub_channels SET lowest_access_level = $1 \
             WHERE channel_id = $2 AND sub_channel_id = $3",
        )
        .bind(db_level(level))
        .bind(ch)
        .bind(i64::from(sub))
        .execute(self.db())
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
            "UPDATE sub_channels SET active_updates = $1 \
             WHERE channel_id = $2 AND sub_channel_id = $3",
        )
        .bind(on)
        .bind(ch)
        .bind(i64::from(sub))
        .execute(self.db())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

mod flags;
#[cfg(test)]
mod tests;
