//! Groups and their host ranks (COMMANDS.md §1.1, §3.2). Group 1 (`admin`, rank 1) and the
//! initial group 2 (`users`) are created by the migration; the initial group cannot be
//! deleted, and no rank check here: callers apply the rank rules of §1.5.

use sqlx::Row;

use super::{Store, contains, is_unique_violation};
use crate::{Error, Result};

/// The group new accounts join.
pub const INITIAL_GROUP_ID: i64 = 2;

/// One group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Row id.
    pub id: i64,
    /// Name (unique, case-insensitive).
    pub name: String,
    /// Host rank of its members.
    pub host_rank: u32,
}

fn rank(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl Store {
    /// The named group.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn group(&self, name: &str) -> Result<Option<Group>> {
        let row = sqlx::query(self.sql(
            "SELECT group_id, name, host_rank FROM groups WHERE name = $1",
            "SELECT group_id, name, host_rank FROM groups WHERE lower(name) = lower($1)",
        ))
        .bind(name)
        .fetch_optional(self.db())
        .await?;
        row.map(|r| -> Result<Group> {
            Ok(Group {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                host_rank: rank(r.try_get(2)?),
            })
        })
        .transpose()
    }

    /// Groups whose name and rank contain the given texts (empty matches all), by rank then
    /// name.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn list_groups(&self, name: &str, host_rank: &str) -> Result<Vec<Group>> {
        let rows = sqlx::query(
            "SELECT group_id, name, host_rank FROM groups \
             WHERE lower(name) LIKE lower($1) ESCAPE '\\' \
             AND CAST(host_rank AS TEXT) LIKE $2 ESCAPE '\\' ORDER BY host_rank, lower(name)",
        )
        .bind(contains(name))
        .bind(contains(host_rank))
        .fetch_all(self.db())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Group {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    host_rank: rank(r.try_get(2)?),
                })
            })
            .collect()
    }

    /// Creates a group with `host_rank`.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the name is taken.
    pub async fn add_group(&self, name: &str, host_rank: u32) -> Result<()> {
        let res = sqlx::query("INSERT INTO groups (name, host_rank) VALUES ($1, $2)")
            .bind(name)
            .bind(i64::from(host_rank))
            .execute(self.db())
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Invalid(format!(
                "a group named {name:?} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an empty group other than the initial one.
    ///
    /// # Errors
    /// [`Error::Invalid`] if it is the initial group or still has members.
    pub async fn remove_group(&self, group: &Group) -> Result<()> {
        if group.id == INITIAL_GROUP_ID || group.id == 1 {
            return Err(Error::Invalid(format!(
                "{} is a built-in group and cannot be removed",
                group.name
            )));
        }
        let members: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE group_id = $1")
            .bind(group.id)
            .fetch_one(self.db())
            .await?;
        if members > 0 {
            return Err(Error::Invalid(format!(
                "{} still has {members} members; move them first",
                group.name
            )));
        }
        sqlx::query("DELETE FROM groups WHERE group_id = $1")
            .bind(group.id)
            .execute(self.db())
            .await?;
        Ok(())
    }

    /// Renames a group.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the new name is taken.
    pub async fn rename_group(&self, group: &Group, new_name: &str) -> Result<()> {
        let res = sqlx::query("UPDATE groups SET name = $1 WHERE group_id = $2")
            .bind(new_name)
            .bind(group.id)
            .execute(self.db())
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Invalid(format!(
                "a group named {new_name:?} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets a group's host rank.
    ///
    /// # Errors
    /// On a database failure (rank 0 is refused by the schema).
    pub async fn set_group_rank(&self, group: &Group, host_rank: u32) -> Result<()> {
        sqlx::query("UPDATE groups SET host_rank = $1 WHERE group_id = $2")
            .bind(i64::from(host_rank))
            .bind(group.id)
            .execute(self.db())
            .await?;
        Ok(())
    }

    /// Moves every member of `src` into `dst`; returns how many moved.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn transfer_group(&self, src: &Group, dst: &Group) -> Result<u64> {
        let done = sqlx::query("UPDATE users SET group_id = $1 WHERE group_id = $2")
            .bind(dst.id)
            .bind(src.id)
            .execute(self.db())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store_tests;

    store_tests! {
        async fn group_lifecycle(store) {
            store.add_group("staff", 2).await.unwrap();
            assert!(matches!(
                store.add_group("STAFF", 2).await,
                Err(Error::Invalid(_))
            ));
            let staff = store.group("Staff").await.unwrap().unwrap();
            assert_eq!(staff.host_rank, 2);
            store
                .create_user("erin", None, "staff", "phc", false, false)
                .await
                .unwrap();
            assert!(
                matches!(store.remove_group(&staff).await, Err(Error::Invalid(m)) if m.contains("members"))
            );
            let users = store.group("users").await.unwrap().unwrap();
            assert_eq!(store.transfer_group(&staff, &users).await.unwrap(), 1);
            store.rename_group(&staff, "crew").await.unwrap();
            let crew = store.group("crew").await.unwrap().unwrap();
            store.set_group_rank(&crew, 5).await.unwrap();
            assert_eq!(store.group("crew").await.unwrap().unwrap().host_rank, 5);
            assert!(store.set_group_rank(&crew, 0).await.is_err());
            store.remove_group(&crew).await.unwrap();
            assert!(matches!(
                store.remove_group(&users).await,
                Err(Error::Invalid(_))
            ));
            let names: Vec<String> = store
                .list_groups("", "")
                .await
                .unwrap()
                .into_iter()
                .map(|g| g.name)
                .collect();
            assert_eq!(names, ["admin", "users"]);
            // Filters are literal substrings: wildcards and quotes in them match nothing extra.
            assert!(store.list_groups("%", "").await.unwrap().is_empty());
            assert!(
                store
                    .list_groups("' OR 1=1 --", "")
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(store.list_groups("", "2").await.unwrap().len(), 1);
        }
    }
}
