//! Tests of the channel store: memberships, owner transfer, sub-channel ids, flags and
//! literal filters.

use super::*;
use crate::store::testing::store_tests;

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

store_tests! {
    async fn add_channel_owner_limit_and_taken_names(store) {
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
            Some((lv(1), false))
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

    async fn rename_channel_refuses_taken_names(store) {
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

    async fn remove_channel_cascades(store) {
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
        assert!(store.add_rdonly_flag(ch, 0, lv(4)).await.unwrap());
        assert!(store.add_rdonly_flag(keep, 0, lv(4)).await.unwrap());

        assert!(store.remove_channel(ch).await.unwrap());
        assert!(!store.remove_channel(ch).await.unwrap());
        assert!(store.channel_by_id(ch).await.unwrap().is_none());
        assert_eq!(store.membership(ch, &alice).await.unwrap(), None);
        assert_eq!(store.membership(ch, &bob).await.unwrap(), None);
        assert!(store.sub_channels(ch).await.unwrap().is_empty());
        assert!(store.rdonly_flags(ch).await.unwrap().is_empty());
        let sql = "SELECT COUNT(*) FROM channel_members WHERE channel_id = $1";
        assert_eq!(count(&store, sql, ch).await, 0);
        let sql = "SELECT COUNT(*) FROM sub_channels WHERE channel_id = $1";
        assert_eq!(count(&store, sql, ch).await, 0);
        let sql = "SELECT COUNT(*) FROM read_only_flags WHERE channel_id = $1";
        assert_eq!(count(&store, sql, ch).await, 0);
        // The other channel is untouched.
        assert!(store.has_rdonly_flag(keep, 0, lv(4)).await.unwrap());
        assert_eq!(store.member_channels(&alice).await.unwrap(), [keep]);
        assert!(!store.remove_channel(u64::MAX).await.unwrap());
    }

    async fn invite_accept_and_remove(store) {
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
        assert_eq!(store.membership(ch, &bob).await.unwrap(), Some((lv(4), true)));
        assert!(store.member_channels(&bob).await.unwrap().is_empty());
        assert_eq!(
            store.user_channel_rows(&bob).await.unwrap(),
            [ChannelRow {
                ch_id: ch,
                channel_name: "Club".to_owned(),
                pending: true,
                level: lv(4),
            }]
        );

        assert!(store.accept_invite(ch, &bob).await.unwrap());
        assert!(
            !store.accept_invite(ch, &bob).await.unwrap(),
            "no pending invite"
        );
        assert!(!store.accept_invite(ch, &alice).await.unwrap());
        assert_eq!(store.membership(ch, &bob).await.unwrap(), Some((lv(4), false)));
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

    async fn set_member_level_transfers_ownership(store) {
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

        assert_eq!(store.set_member_level(ch, &bob, lv(3)).await.unwrap(), None);
        assert_eq!(store.membership(ch, &bob).await.unwrap(), Some((lv(3), false)));

        assert_eq!(
            store.set_member_level(ch, &carol, lv(1)).await.unwrap(),
            Some(alice)
        );
        assert_eq!(
            store.membership(ch, &carol).await.unwrap(),
            Some((lv(1), false))
        );
        assert_eq!(
            store.membership(ch, &alice).await.unwrap(),
            Some((lv(2), false))
        );
        let owners: Vec<UserId> = store
            .members(ch, "", "")
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.level == lv(1))
            .map(|m| m.user_id)
            .collect();
        assert_eq!(owners, [carol]);
        assert!(store.owns_a_channel(&carol).await.unwrap());
        assert!(!store.owns_a_channel(&alice).await.unwrap());

        // Already the owner: nothing changes hands.
        assert_eq!(store.set_member_level(ch, &carol, lv(1)).await.unwrap(), None);
        assert_eq!(
            store.membership(ch, &alice).await.unwrap(),
            Some((lv(2), false))
        );

        // A pending invitee or a stranger has no full membership; nothing changes.
        for u in [&dave, &UserId([3; 32])] {
            assert!(matches!(
                store.set_member_level(ch, u, lv(1)).await,
                Err(Error::Invalid(_))
            ));
        }
        assert_eq!(
            store.membership(ch, &carol).await.unwrap(),
            Some((lv(1), false))
        );
        assert_eq!(store.membership(ch, &dave).await.unwrap(), Some((lv(4), true)));
        assert!(matches!(
            store.set_member_level(ch, &bob, lv(5)).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            store.set_member_level(u64::MAX, &bob, lv(2)).await,
            Err(Error::Invalid(_))
        ));
    }

    async fn sub_channels_ids_limits_and_names(store) {
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
            lowest_level: lv(4),
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
        assert!(store.set_sub_channel_level(ch, 1, lv(5)).await.unwrap());
        assert!(!store.set_sub_channel_level(ch, 9, lv(5)).await.unwrap());
        assert!(
            ChLevel::new(6).is_err(),
            "a level outside 1-5 cannot reach the store"
        );
        assert!(store.set_sub_channel_active(ch, 1, true).await.unwrap());
        assert!(!store.set_sub_channel_active(ch, 9, true).await.unwrap());
        assert_eq!(
            store.sub_channel_by_id(ch, 1).await.unwrap(),
            Some(SubChannel {
                ch_id: ch,
                sub_id: 1,
                name: "dd".to_owned(),
                lowest_level: lv(5),
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

    async fn sub_channel_ids_run_out_at_256(store) {
        let alice = user(&store, "alice").await;
        let ch = store
            .add_channel("Full", &alice, 10)
            .await
            .unwrap()
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 254) \
             INSERT INTO sub_channels (channel_id, sub_channel_id, sub_channel_name) \
             SELECT $1, i, 's' || i FROM n",
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

    async fn rdonly_flags_outlive_their_sub_channel(store) {
        let alice = user(&store, "alice").await;
        let ch = store
            .add_channel("Flags", &alice, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.add_sub_channel(ch, "x", 50).await.unwrap(), Some(0));
        assert!(store.add_rdonly_flag(ch, 0, lv(4)).await.unwrap());
        assert!(!store.add_rdonly_flag(ch, 0, lv(4)).await.unwrap(), "exists");
        assert!(store.add_rdonly_flag(ch, 0, lv(2)).await.unwrap());
        assert!(
            store.add_rdonly_flag(ch, 200, lv(5)).await.unwrap(),
            "sub need not exist"
        );
        assert!(store.has_rdonly_flag(ch, 0, lv(4)).await.unwrap());
        assert!(!store.has_rdonly_flag(ch, 0, lv(3)).await.unwrap());

        assert!(store.remove_sub_channel(ch, 0).await.unwrap());
        assert!(store.has_rdonly_flag(ch, 0, lv(4)).await.unwrap());
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
            [flag(0, lv(2)), flag(0, lv(4)), flag(200, lv(5))]
        );

        assert!(store.remove_rdonly_flag(ch, 0, lv(4)).await.unwrap());
        assert!(!store.remove_rdonly_flag(ch, 0, lv(4)).await.unwrap());
        assert!(!store.has_rdonly_flag(ch, 0, lv(4)).await.unwrap());
        assert_eq!(
            store.rdonly_flags(ch).await.unwrap(),
            [flag(0, lv(2)), flag(200, lv(5))]
        );
        assert!(matches!(
            store.add_rdonly_flag(ch + 100, 0, lv(4)).await,
            Err(Error::Invalid(_))
        ));
        assert!(!store.has_rdonly_flag(u64::MAX, 0, lv(4)).await.unwrap());
    }

    async fn filters_are_literal(store) {
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
                .set_member_level(ab, &plain, lv(3))
                .await
                .unwrap()
                .is_none()
        );
        let members = store.members(ab, "", "").await.unwrap();
        let order: Vec<(&str, u8, bool)> = members
            .iter()
            .map(|m| (m.user_name.as_str(), m.level.get(), m.pending))
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
                level: lv(4),
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

    async fn user_channel_rows_match_the_user_exactly(store) {
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
                    level: lv(1),
                },
                ChannelRow {
                    ch_id: invited,
                    channel_name: "Elsewhere".to_owned(),
                    pending: true,
                    level: lv(4),
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

/// A channel level from its number (test shorthand).
fn lv(n: u8) -> ChLevel {
    ChLevel::new(n).expect("a level 1-5")
}
