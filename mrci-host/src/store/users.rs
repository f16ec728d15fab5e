//! Accounts: creation, lookup by name or email, password and name changes, group moves, and
//! failed-login counting with temporary locks (COMMANDS.md §4.3, §7 item 9).

use mrci_proto::UserId;
use sqlx::{Any, Row, any::AnyRow};

use super::{Store, backend::flag, contains, is_unique_violation};
use crate::{Error, Result};

/// An account as the host needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The 32-byte user id.
    pub id: UserId,
    /// User name.
    pub name: String,
    /// Email address, empty if none.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Group name.
    pub group_name: String,
    /// The group's host rank.
    pub host_rank: u32,
    /// Argon2id PHC string.
    pub phc: String,
    /// The user must set a new password at the next login.
    pub must_change_pw: bool,
    /// The user must choose a new name at the next login.
    pub must_change_name: bool,
    /// End of the latest temporary lock after failed logins (Unix seconds); it may lie in
    /// the past. See [`UserRecord::lock_end`].
    pub locked_until: Option<i64>,
    /// Failed logins since the last success or temporary lock.
    pub failed_logins: u32,
    /// Whether the email address is verified.
    pub email_verified: bool,
    /// Locked by an operator (`lock_acct`) until unlocked.
    pub locked: bool,
    /// Creation time (Unix seconds).
    pub created_at: i64,
}

/// The account query with a `WHERE` clause appended at compile time.
macro_rules! select_user {
    ($filter:literal) => {
        concat!(
            "SELECT u.user_id, u.user_name, COALESCE(u.email_address, '') AS email, u.display_name, \
     g.name AS group_name, g.host_rank, u.pw_hash, u.new_password_req, u.new_name_req, u.locked_until, \
     u.failed_logins, u.email_verified, u.locked, u.time_stamp FROM users u JOIN groups g ON g.group_id = u.group_id ",
            $filter
        )
    };
}

/// The account insert, taking its group id from a `groups` row chosen by the `WHERE` clause
/// appended at compile time (the group name comparison differs per backend).
macro_rules! insert_user {
    () => {
        "INSERT INTO users (user_id, user_name, email_address, pw_hash, group_id, \
         new_password_req, new_name_req, time_stamp) \
         SELECT $1, $2, $3, $4, group_id, $5, $6, $7 FROM groups "
    };
}

fn record(row: &AnyRow) -> Result<UserRecord> {
    let id: Vec<u8> = row.try_get("user_id")?;
    Ok(UserRecord {
        id: UserId::parse(&id)?,
        name: row.try_get("user_name")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        group_name: row.try_get("group_name")?,
        host_rank: u32::try_from(row.try_get::<i64, _>("host_rank")?).unwrap_or(u32::MAX),
        phc: row.try_get("pw_hash")?,
        must_change_pw: flag(row, "new_password_req")?,
        must_change_name: flag(row, "new_name_req")?,
        locked_until: row.try_get("locked_until")?,
        failed_logins: u32::try_from(row.try_get::<i64, _>("failed_logins")?).unwrap_or(0),
        email_verified: flag(row, "email_verified")?,
        locked: flag(row, "locked")?,
        created_at: row.try_get("time_stamp")?,
    })
}

impl UserRecord {
    /// The end of a temporary lock still in force at `now`, if any.
    pub fn lock_end(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|until| *until > now)
    }
}

impl Store {
    /// Creates an account in `group` and returns its new random id.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the name or email is taken or the group does not exist.
    pub async fn create_user(
        &self,
        name: &str,
        email: Option<&str>,
        group: &str,
        phc: &str,
        must_change_pw: bool,
        must_change_name: bool,
    ) -> Result<UserId> {
        let id = UserId(crate::host::random_bytes());
        let now = crate::host::Clock::system().now();
        let res = sqlx::query(self.sql(
            concat!(insert_user!(), "WHERE name = $8"),
            concat!(insert_user!(), "WHERE lower(name) = lower($8)"),
        ))
        .bind(&id.0[..])
        .bind(name)
        .bind(email)
        .bind(phc)
        .bind(must_change_pw)
        .bind(must_change_name)
        .bind(now)
        .bind(group)
        .execute(self.db())
        .await;
        match res {
            Ok(done) if done.rows_affected() == 1 => Ok(id),
            Ok(_) => Err(Error::Invalid(format!("no group named {group:?}"))),
            Err(e) if is_unique_violation(&e) => Err(Error::Invalid(format!(
                "the user name {name:?} or its email is taken"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Finds an account by user name or email address, case-insensitively.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn find_user(&self, name_or_email: &str) -> Result<Option<UserRecord>> {
        let sql = self.sql(
            select_user!("WHERE u.user_name = $1 OR u.email_address = $1"),
            select_user!(
                "WHERE lower(u.user_name) = lower($1) OR lower(u.email_address) = lower($1)"
            ),
        );
        let row = sqlx::query(sql)
            .bind(name_or_email)
            .fetch_optional(self.db())
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// Finds an account by id.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn user_by_id(&self, id: &UserId) -> Result<Option<UserRecord>> {
        let sql = select_user!("WHERE u.user_id = $1");
        let row = sqlx::query(sql)
            .bind(&id.0[..])
            .fetch_optional(self.db())
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// Replaces the password hash and sets or clears the forced-change flag.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_password(&self, id: &UserId, phc: &str, must_change: bool) -> Result<()> {
        sqlx::query("UPDATE users SET pw_hash = $1, new_password_req = $2 WHERE user_id = $3")
            .bind(phc)
            .bind(must_change)
            .bind(&id.0[..])
            .execute(self.db())
            .await?;
        Ok(())
    }

    /// Renames an account and clears the forced-rename flag. False if the name is taken.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn rename_user(&self, id: &UserId, name: &str) -> Result<bool> {
        let res =
            sqlx::query("UPDATE users SET user_name = $1, new_name_req = FALSE WHERE user_id = $2")
                .bind(name)
                .bind(&id.0[..])
                .execute(self.db())
                .await;
        match res {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves the named user into the named group. False if either does not exist.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_group_by_name(&self, user: &str, group: &str) -> Result<bool> {
        let done = sqlx::query(self.sql(
            "UPDATE users SET group_id = (SELECT group_id FROM groups WHERE name = $1) \
             WHERE user_name = $2 AND EXISTS (SELECT 1 FROM groups WHERE name = $1)",
            "UPDATE users SET group_id = \
             (SELECT group_id FROM groups WHERE lower(name) = lower($1)) \
             WHERE lower(user_name) = lower($2) \
             AND EXISTS (SELECT 1 FROM groups WHERE lower(name) = lower($1))",
        ))
        .bind(group)
        .bind(user)
        .execute(self.db())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes an account; its log rows keep a NULL user.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn delete_user(&self, id: &UserId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM users WHERE user_id = $1")
            .bind(&id.0[..])
            .execute(self.db())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets or clears the operator lock.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_locked(&self, id: &UserId, locked: bool) -> Result<()> {
        self.update_user(
            "UPDATE users SET locked = $1 WHERE user_id = $2",
            locked,
            id,
        )
        .await
    }

    /// Sets the display name.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_display_name(&self, id: &UserId, name: &str) -> Result<()> {
        self.update_user(
            "UPDATE users SET display_name = $1 WHERE user_id = $2",
            name.to_owned(),
            id,
        )
        .await
    }

    /// Sets the email address and marks it unverified. False if another account uses it.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_email(&self, id: &UserId, email: &str) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE users SET email_address = $1, email_verified = FALSE WHERE user_id = $2",
        )
        .bind(email)
        .bind(&id.0[..])
        .execute(self.db())
        .await;
        match res {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets the forced password-change flag.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_password_required(&self, id: &UserId, on: bool) -> Result<()> {
        self.update_user(
            "UPDATE users SET new_password_req = $1 WHERE user_id = $2",
            on,
            id,
        )
        .await
    }

    /// Sets the forced rename flag.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_name_required(&self, id: &UserId, on: bool) -> Result<()> {
        self.update_user(
            "UPDATE users SET new_name_req = $1 WHERE user_id = $2",
            on,
            id,
        )
        .await
    }

    /// Accounts whose name and group contain the given texts:
    /// (created, user name, group, host rank, user id hex).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn list_users(
        &self,
        name: &str,
        group: &str,
    ) -> Result<Vec<(i64, String, String, u32, String)>> {
        let rows: Vec<(i64, String, String, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT u.time_stamp, u.user_name, g.name, g.host_rank, u.user_id FROM users u \
             JOIN groups g ON g.group_id = u.group_id \
             WHERE lower(u.user_name) LIKE lower($1) ESCAPE '\\' \
             AND lower(g.name) LIKE lower($2) ESCAPE '\\' ORDER BY lower(u.user_name)",
        )
        .bind(contains(name))
        .bind(contains(group))
        .fetch_all(self.db())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(t, n, g, r, id)| {
                let hex = id.iter().map(|b| format!("{b:02x}")).collect();
                (t, n, g, u32::try_from(r).unwrap_or(u32::MAX), hex)
            })
            .collect())
    }

    /// Runs `UPDATE users SET <column> = $1 WHERE user_id = $2` for one column.
    async fn update_user<T>(&self, sql: &'static str, value: T, id: &UserId) -> Result<()>
    where
        T: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Send + 'static,
    {
        sqlx::query(sql)
            .bind(value)
            .bind(id.0.to_vec())
            .execute(self.db())
            .await?;
        Ok(())
    }

    /// Number of accounts, and of accounts with host rank 1.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn user_counts(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(CASE WHEN g.host_rank = 1 THEN 1 END) AS admins \
             FROM users u JOIN groups g ON g.group_id = u.group_id",
        )
        .fetch_one(self.db())
        .await?;
        Ok((row.try_get("n")?, row.try_get("admins")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store_tests;

    store_tests! {
        async fn create_find_rename_and_regroup(store) {
            let id = store
                .create_user(
                    "Alice",
                    Some("alice@example.org"),
                    "users",
                    "phc",
                    false,
                    true,
                )
                .await
                .unwrap();
            let by_name = store.find_user("ALICE").await.unwrap().unwrap();
            let by_email = store.find_user("Alice@Example.org").await.unwrap().unwrap();
            assert_eq!(by_name, by_email);
            assert_eq!(
                (by_name.id, by_name.host_rank, by_name.group_name.as_str()),
                (id, 2, "users")
            );
            assert!(by_name.must_change_name && !by_name.must_change_pw);
            let dup = store
                .create_user("alice", None, "users", "phc", false, false)
                .await;
            assert!(matches!(dup, Err(Error::Invalid(m)) if m.contains("taken")));
            assert!(matches!(
                store
                    .create_user("x1", None, "nope", "p", false, false)
                    .await,
                Err(Error::Invalid(_))
            ));
            store
                .create_user("bob", None, "users", "phc", false, false)
                .await
                .unwrap();
            assert!(!store.rename_user(&id, "BOB").await.unwrap(), "name taken");
            assert!(store.rename_user(&id, "alicia").await.unwrap());
            assert!(
                !store
                    .user_by_id(&id)
                    .await
                    .unwrap()
                    .unwrap()
                    .must_change_name
            );
            assert!(store.set_group_by_name("alicia", "admin").await.unwrap());
            assert!(!store.set_group_by_name("alicia", "nope").await.unwrap());
            assert_eq!(store.user_by_id(&id).await.unwrap().unwrap().host_rank, 1);
            assert_eq!(store.user_counts().await.unwrap(), (2, 1));
        }

    }
}
