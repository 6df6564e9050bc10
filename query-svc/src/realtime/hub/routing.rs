//! Routing: which of a tenant's users each event, typing notice and presence change reaches,
//! as which frame. Pure, given the [`Membership`] and an [`Audience`] that delivers: group
//! events change the membership in the order that makes a joining member see its own join
//! and a leaving one its own removal, and nothing after it.

use super::membership::Membership;
use super::{Out, PresenceState, TypingNotice};
use crate::realtime::frames::{Device, ServerFrame};
use events::event::{UserBlocked, UserUnblocked};
use events::{ChannelId, ChannelKey, ChannelType, Envelope, Event, TenantId, Uid};
use std::collections::HashSet;
use std::sync::Arc;

/// Where routed frames go (the hub's registry; a recorder in tests).
pub trait Audience {
    /// Every connection of `uid`.
    fn user(&mut self, tenant: &TenantId, uid: &Uid, out: &Out);
    /// Every connection of each of `members` but `except`.
    fn members(
        &mut self,
        tenant: &TenantId,
        members: &HashSet<Uid>,
        except: Option<&Uid>,
        out: &Out,
    );
}

fn to_members(
    m: &Membership,
    to: &mut impl Audience,
    tenant: &TenantId,
    group: &ChannelId,
    except: Option<&Uid>,
    out: &Out,
) {
    if let Some(members) = m.members(tenant, group) {
        to.members(tenant, members, except, out);
    }
}

/// Routes the event at log position `seq`, changing `m` as group events do.
pub fn event(seq: u64, env: &Envelope, m: &mut Membership, to: &mut impl Audience) {
    let tenant = &env.tenant;
    match &env.event {
        Event::MessageSent(msg) => {
            let channel = Arc::new(msg.channel.clone());
            let mut id = uuid::Uuid::encode_buffer();
            let message_id: &str = msg.message_id.hyphenated().encode_lower(&mut id);
            let out_for = |channel_id: &str| Out::Message {
                channel: channel.clone(),
                message_seq: msg.message_seq,
                event_seq: seq,
                frame: ServerFrame::Message {
                    event_seq: seq,
                    message_id,
                    message_seq: msg.message_seq,
                    client_msg_no: msg.client_msg_no.as_deref(),
                    from_uid: msg.from_uid.as_str(),
                    channel_id,
                    channel_type: msg.channel.channel_type().as_u8(),
                    timestamp: msg.timestamp,
                    payload: &msg.payload,
                }
                .to_json()
                .into(),
            };
            match &msg.channel {
                ChannelKey::Personal { low, high } => {
                    to.user(tenant, low, &out_for(high.as_str()));
                    if low != high {
                        to.user(tenant, high, &out_for(low.as_str()));
                    }
                }
                ChannelKey::Group { id } => {
                    to_members(m, to, tenant, id, None, &out_for(id.as_str()));
                }
            }
        }
        Event::GroupCreated(g) => {
            m.create(tenant, &g.channel_id, &g.members);
            let frame = ServerFrame::MemberAdded {
                event_seq: seq,
                channel_id: g.channel_id.as_str(),
                channel_type: 2,
                uids: g.members.iter().map(Uid::as_str).collect(),
                name: g.name.as_deref(),
                owner: g.owner.as_ref().map(Uid::as_str),
            };
            to_members(m, to, tenant, &g.channel_id, None, &log_frame(seq, &frame));
        }
        Event::MembersAdded(a) => {
            m.add(tenant, &a.channel_id, a.uids.iter().cloned());
            let frame = ServerFrame::MemberAdded {
                event_seq: seq,
                channel_id: a.channel_id.as_str(),
                channel_type: 2,
                uids: a.uids.iter().map(Uid::as_str).collect(),
                name: None,
                owner: None,
            };
            to_members(m, to, tenant, &a.channel_id, None, &log_frame(seq, &frame));
        }
        Event::MemberRemoved(r) => {
            let frame = ServerFrame::MemberRemoved {
                event_seq: seq,
                channel_id: r.channel_id.as_str(),
                channel_type: 2,
                uid: r.uid.as_str(),
            };
            // Still a member here: it learns of its own removal, then nothing more.
            to_members(m, to, tenant, &r.channel_id, None, &log_frame(seq, &frame));
            m.remove(tenant, &r.channel_id, &r.uid);
        }
        Event::GroupDisbanded(d) => {
            let frame = ServerFrame::ChannelDisbanded {
                event_seq: seq,
                channel_id: d.channel_id.as_str(),
                channel_type: 2,
            };
            to_members(m, to, tenant, &d.channel_id, None, &log_frame(seq, &frame));
            m.disband(tenant, &d.channel_id);
        }
        Event::MemberUpdated(e) => {
            let frame = ServerFrame::MemberUpdated {
                event_seq: seq,
                channel_id: e.channel_id.as_str(),
                channel_type: 2,
                uid: e.uid.as_str(),
                role: e.role.as_str(),
                muted_until: e.muted_until,
            };
            to_members(m, to, tenant, &e.channel_id, None, &log_frame(seq, &frame));
        }
        Event::ChannelUpdated(e) => {
            let frame = ServerFrame::ChannelUpdated {
                event_seq: seq,
                channel_id: e.channel_id.as_str(),
                channel_type: 2,
                muted: e.muted,
                whitelist_only: e.whitelist_only,
            };
            to_members(m, to, tenant, &e.channel_id, None, &log_frame(seq, &frame));
        }
        Event::MemberBanned(e) => {
            let frame = ServerFrame::MemberBanned {
                event_seq: seq,
                channel_id: e.channel_id.as_str(),
                channel_type: 2,
                uid: e.uid.as_str(),
                until: e.until,
            };
            // A banned member learns of its ban (as of a removal), then nothing more.
            to_members(m, to, tenant, &e.channel_id, None, &log_frame(seq, &frame));
            m.remove(tenant, &e.channel_id, &e.uid);
        }
        Event::MemberUnbanned(e) => {
            let frame = ServerFrame::MemberUnbanned {
                event_seq: seq,
                channel_id: e.channel_id.as_str(),
                channel_type: 2,
                uid: e.uid.as_str(),
            };
            to_members(m, to, tenant, &e.channel_id, None, &log_frame(seq, &frame));
        }
        Event::SendListChanged(e) => {
            let frame = ServerFrame::SendListChanged {
                event_seq: seq,
                channel_id: e.channel_id.as_str(),
                channel_type: 2,
                list: e.list.as_str(),
                added: e.added.iter().map(Uid::as_str).collect(),
                removed: e.removed.iter().map(Uid::as_str).collect(),
            };
            to_members(m, to, tenant, &e.channel_id, None, &log_frame(seq, &frame));
        }
        // Only the blocker's own devices learn of a block: the blocked user is not told.
        Event::UserBlocked(UserBlocked { uid, blocked_uid })
        | Event::UserUnblocked(UserUnblocked { uid, blocked_uid }) => {
            let frame = ServerFrame::BlockChanged {
                event_seq: seq,
                uid: uid.as_str(),
                blocked_uid: blocked_uid.as_str(),
                blocked: matches!(env.event, Event::UserBlocked(_)),
            };
            to.user(tenant, uid, &log_frame(seq, &frame));
        }
        Event::ReadPositionSet(r) => {
            let ct = r.channel.channel_type().as_u8();
            let frame_for = |channel_id: &str| {
                log_frame(
                    seq,
                    &ServerFrame::Read {
                        event_seq: seq,
                        uid: r.uid.as_str(),
                        channel_type: ct,
                        channel_id,
                        message_seq: r.message_seq,
                    },
                )
            };
            // The reader's devices, and a personal channel's peer (read receipts).
            to.user(
                tenant,
                &r.uid,
                &frame_for(&r.channel.channel_id_for(r.uid.as_str())),
            );
            if let ChannelKey::Personal { low, high } = &r.channel {
                let peer = if *low == r.uid { high } else { low };
                if *peer != r.uid {
                    to.user(tenant, peer, &frame_for(r.uid.as_str()));
                }
            }
        }
    }
}

/// Routes a typing notice of `tenant`: to a personal channel's peer, or to a group's other
/// members when the typist is a member; anything malformed is dropped.
pub fn typing(tenant: &TenantId, n: &TypingNotice, m: &Membership, to: &mut impl Audience) {
    let (Ok(uid), Ok(ct), Ok(channel_id)) = (
        Uid::parse(n.uid.as_str()),
        ChannelType::try_from(n.channel_type),
        ChannelId::parse(n.channel_id.as_str()),
    ) else {
        return;
    };
    match ct {
        ChannelType::Personal => {
            let Ok(peer) = Uid::parse(channel_id.as_str()) else {
                return;
            };
            if peer != uid {
                to.user(tenant, &peer, &typing_frame(1, uid.as_str(), uid.as_str()));
            }
        }
        ChannelType::Group => {
            if m.is_member(tenant, &channel_id, &uid) {
                let frame = typing_frame(2, channel_id.as_str(), uid.as_str());
                to_members(m, to, tenant, &channel_id, Some(&uid), &frame);
            }
        }
    }
}

fn typing_frame(channel_type: u8, channel_id: &str, uid: &str) -> Out {
    let f = ServerFrame::Typing {
        channel_type,
        channel_id,
        uid,
    };
    Out::Frame {
        kind: f.kind(),
        event_seq: None,
        frame: f.to_json().into(),
    }
}

/// The `presence` frame of `p`.
pub fn presence_frame(p: &PresenceState) -> Out {
    let f = ServerFrame::Presence {
        uid: p.uid.as_str(),
        online: !p.devices.is_empty(),
        devices: p
            .devices
            .iter()
            .map(|&d| Device { device_flag: d })
            .collect(),
    };
    Out::Frame {
        kind: f.kind(),
        event_seq: None,
        frame: f.to_json().into(),
    }
}

fn log_frame(seq: u64, f: &ServerFrame<'_>) -> Out {
    Out::Frame {
        kind: f.kind(),
        event_seq: Some(seq),
        frame: f.to_json().into(),
    }
}

#[cfg(test)]
mod tests {
    //! Given a membership, when an event is routed, then exactly these users get these frames.
    use super::*;
    use events::event::*;

    /// Resolves every delivery to the users it reaches.
    #[derive(Default)]
    struct Recorder {
        got: Vec<(String, &'static str)>,
    }

    fn kind(out: &Out) -> &'static str {
        match out {
            Out::Message { .. } => "message",
            Out::Frame { kind, .. } => kind,
        }
    }

    impl Audience for Recorder {
        fn user(&mut self, _: &TenantId, uid: &Uid, out: &Out) {
            self.got.push((uid.to_string(), kind(out)));
        }
        fn members(
            &mut self,
            _: &TenantId,
            members: &HashSet<Uid>,
            except: Option<&Uid>,
            out: &Out,
        ) {
            let mut uids: Vec<_> = members.iter().filter(|u| Some(*u) != except).collect();
            uids.sort();
            for u in uids {
                self.got.push((u.to_string(), kind(out)));
            }
        }
    }

    fn uid(s: &str) -> Uid {
        Uid::parse(s).expect("uid")
    }

    fn group() -> ChannelId {
        ChannelId::parse("team").expect("group")
    }

    fn env(event: Event) -> Envelope {
        Envelope {
            tenant: TenantId::parse("t").expect("tenant"),
            occurred_at: 0,
            event,
        }
    }

    fn route(m: &mut Membership, event: Event) -> Vec<(String, &'static str)> {
        let mut r = Recorder::default();
        super::event(7, &env(event), m, &mut r);
        r.got
    }

    fn given(members: &[&str]) -> Membership {
        let mut m = Membership::default();
        let tenant = TenantId::parse("t").expect("tenant");
        m.create(
            &tenant,
            &group(),
            &members.iter().map(|u| uid(u)).collect::<Vec<_>>(),
        );
        m
    }

    fn group_message() -> Event {
        Event::MessageSent(MessageSent {
            channel: ChannelKey::Group { id: group() },
            message_id: uuid::Uuid::nil(),
            message_seq: 1,
            from_uid: uid("a"),
            client_msg_no: None,
            payload: "aGk=".into(),
            timestamp: 0,
        })
    }

    fn pairs(v: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
        v.iter().map(|(u, k)| ((*u).to_owned(), *k)).collect()
    }

    #[test]
    fn a_removed_member_sees_its_removal_and_nothing_after() {
        let mut m = given(&["a", "b"]);
        let removed = route(
            &mut m,
            Event::MemberRemoved(MemberRemoved {
                channel_id: group(),
                uid: uid("b"),
            }),
        );
        assert_eq!(
            removed,
            pairs(&[("a", "member_removed"), ("b", "member_removed")])
        );
        assert_eq!(route(&mut m, group_message()), pairs(&[("a", "message")]));
    }

    #[test]
    fn an_added_member_sees_its_own_join_and_what_follows() {
        let mut m = given(&["a"]);
        let added = route(
            &mut m,
            Event::MembersAdded(MembersAdded {
                channel_id: group(),
                uids: vec![uid("c")],
            }),
        );
        assert_eq!(
            added,
            pairs(&[("a", "member_added"), ("c", "member_added")])
        );
        assert_eq!(
            route(&mut m, group_message()),
            pairs(&[("a", "message"), ("c", "message")])
        );
    }

    #[test]
    fn a_disbanded_group_reaches_its_members_once_then_no_one() {
        let mut m = given(&["a", "b"]);
        let disbanded = route(
            &mut m,
            Event::GroupDisbanded(GroupDisbanded {
                channel_id: group(),
            }),
        );
        assert_eq!(
            disbanded,
            pairs(&[("a", "channel_disbanded"), ("b", "channel_disbanded")])
        );
        assert!(route(&mut m, group_message()).is_empty());
    }

    #[test]
    fn a_personal_message_and_its_read_receipt_reach_both_sides() {
        let mut m = Membership::default();
        let channel = ChannelKey::personal(&uid("a"), &uid("b"));
        let sent = route(
            &mut m,
            Event::MessageSent(MessageSent {
                channel: channel.clone(),
                message_id: uuid::Uuid::nil(),
                message_seq: 1,
                from_uid: uid("a"),
                client_msg_no: None,
                payload: "aGk=".into(),
                timestamp: 0,
            }),
        );
        assert_eq!(sent, pairs(&[("a", "message"), ("b", "message")]));
        let read = route(
            &mut m,
            Event::ReadPositionSet(ReadPositionSet {
                uid: uid("b"),
                channel,
                message_seq: 1,
            }),
        );
        assert_eq!(read, pairs(&[("b", "read"), ("a", "read")]));
    }

    #[test]
    fn typing_reaches_the_other_members_only_from_a_member() {
        let m = given(&["a", "b", "c"]);
        let tenant = TenantId::parse("t").expect("tenant");
        let notice = |from: &str| TypingNotice {
            uid: from.into(),
            channel_type: 2,
            channel_id: "team".into(),
        };
        let mut r = Recorder::default();
        typing(&tenant, &notice("a"), &m, &mut r);
        assert_eq!(r.got, pairs(&[("b", "typing"), ("c", "typing")]));
        let mut r = Recorder::default();
        typing(&tenant, &notice("stranger"), &m, &mut r);
        assert!(r.got.is_empty(), "a non-member's typing reaches no one");
    }
}
