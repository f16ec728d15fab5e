//! Read-only flags (COMMANDS.md §2.5): keyed by channel, sub-channel id and level, so they
//! survive renames and the deletion of their sub-channel.

use mrci_proto::ChLevel;
use sqlx::Row;

use super::{
    Flag, RdonlyFlag, Store, ch_id_from, db_id, db_id_or_invalid, is_fk_violation,
    is_unique_violation, u8_from,
};
use crate::{Error, Result};

impl Store {
    /// Adds a read-only flag; the sub-channel id need not exist. False if the flag exists.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the channel does not exist; otherwise on a database failure.
    pub async fn add_rdonly_flag(&self, ch: u64, sub: u8, level: ChLevel) -> Result<bool> {
        let ch = db_id_or_invalid(ch)?;
        let res = sqlx::query(
            "INSERT INTO read_only_flags (channel_id, sub_channel_id, access_level) \
             VALUES ($1, $2, $3)",
        )
        .bind(ch)
        .bind(i64::from(sub))
        .bind(super::db_level(level))
        .execute(self.db())
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
    pub async fn remove_rdonly_flag(&self, ch: u64, sub: u8, level: ChLevel) -> Result<bool> {
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        let done = sqlx::query(
            "DELETE FROM read_only_flags \
             WHERE channel_id = $1 AND sub_channel_id = $2 AND access_level = $3",
        )
        .bind(ch)
        .bind(i64::from(sub))
        .bind(super::db_level(level))
        .execute(self.db())
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
             WHERE f.channel_id = $1 ORDER BY f.sub_channel_id, f.access_level",
        )
        .bind(ch)
        .fetch_all(self.db())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RdonlyFlag {
                    ch_id: ch_id_from(r, "channel_id")?,
                    channel_name: r.try_get("channel_name")?,
                    sub_id: u8_from(r, "sub_channel_id")?,
                    level: super::level_from(r, "access_level")?,
                })
            })
            .collect()
    }

    /// Whether the read-only flag `(ch, sub, level)` exists.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn has_rdonly_flag(&self, ch: u64, sub: u8, level: ChLevel) -> Result<bool> {
        let Some(ch) = db_id(ch) else {
            return Ok(false);
        };
        let found: Flag = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM read_only_flags \
             WHERE channel_id = $1 AND sub_channel_id = $2 AND access_level = $3)",
        )
        .bind(ch)
        .bind(i64::from(sub))
        .bind(super::db_level(level))
        .fetch_one(self.db())
        .await?;
        Ok(found.0)
    }
}
