//! The hub's connection registry and slow-consumer policy: this instance's connections by user,
//! their bounded outbound queues, and who follows whose presence.
//!
//! A connection whose queue is full is dropped at once (its receiver then ends and the session
//! closes with 4008) rather than slowing the hub for everyone else.

use super::routing::Audience;
use super::{Out, Registration};
use events::{TenantId, Uid};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

struct Slot {
    tenant: TenantId,
    uid: Uid,
    tx: mpsc::Sender<Out>,
    overflowed: Arc<AtomicBool>,
    follows: Vec<Uid>,
}

/// See the module docs. Runs on the hub task only.
pub struct Registry {
    next_id: u64,
    queue: usize,
    slots: HashMap<u64, Slot>,
    users: HashMap<TenantId, HashMap<Uid, Vec<u64>>>,
    followers: HashMap<TenantId, HashMap<Uid, HashSet<u64>>>,
    /// Frames queued since [`Registry::take_delivered`].
    delivered: u64,
}

impl Registry {
    /// An empty registry whose connections get queues of `queue` items.
    pub fn new(queue: usize) -> Self {
        Self {
            next_id: 0,
            queue: queue.max(1),
            slots: HashMap::new(),
            users: HashMap::new(),
            followers: HashMap::new(),
            delivered: 0,
        }
    }

    /// How many connections are registered.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Frames queued since the last call.
    pub fn take_delivered(&mut self) -> u64 {
        std::mem::take(&mut self.delivered)
    }

    /// A new connection of `uid`: its id and queue. It receives from now on.
    pub fn register(&mut self, tenant: TenantId, uid: Uid) -> Registration {
        self.next_id += 1;
        let id = self.next_id;
        let (tx, rx) = mpsc::channel(self.queue);
        let overflowed = Arc::new(AtomicBool::new(false));
        self.users
            .entry(tenant.clone())
            .or_default()
            .entry(uid.clone())
            .or_default()
            .push(id);
        self.slots.insert(
            id,
            Slot {
                tenant,
                uid,
                tx,
                overflowed: overflowed.clone(),
                follows: Vec::new(),
            },
        );
        metrics::gauge!("query_svc_ws_connections").set(self.slots.len() as f64);
        Registration { id, rx, overflowed }
    }

    /// Replaces the users whose presence connection `id` follows.
    pub fn follow(&mut self, id: u64, uids: Vec<Uid>) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut slot.follows, uids.clone());
        let f = self.followers.entry(slot.tenant.clone()).or_default();
        for u in old {
            unfollow(f, &u, id);
        }
        for u in uids {
            f.entry(u).or_default().insert(id);
        }
    }

    /// The connections following `uid`'s presence.
    pub fn followers(&self, tenant: &TenantId, uid: &Uid) -> Vec<u64> {
        self.followers
            .get(tenant)
            .and_then(|f| f.get(uid))
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Forgets connection `id` (idempotent).
    pub fn unregister(&mut self, id: u64) {
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        if let Some(users) = self.users.get_mut(&slot.tenant) {
            if let Some(ids) = users.get_mut(&slot.uid) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    users.remove(&slot.uid);
                }
            }
            if users.is_empty() {
                self.users.remove(&slot.tenant);
            }
        }
        if let Some(f) = self.followers.get_mut(&slot.tenant) {
            for u in &slot.follows {
                unfollow(f, u, id);
            }
            if f.is_empty() {
                self.followers.remove(&slot.tenant);
            }
        }
        metrics::gauge!("query_svc_ws_connections").set(self.slots.len() as f64);
    }

    /// Queues `out` for connection `id`; a full queue drops the connection (slow consumer).
    pub fn push(&mut self, id: u64, out: Out) {
        let Some(slot) = self.slots.get(&id) else {
            return;
        };
        match slot.tx.try_send(out) {
            Ok(()) => self.delivered += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                slot.overflowed.store(true, Ordering::Release);
                metrics::counter!("query_svc_ws_slow_consumer_closes_total").increment(1);
                tracing::info!(connection = id, user.uid = %slot.uid, "outbound queue full: dropping the connection");
                self.unregister(id);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.unregister(id),
        }
    }
}

fn unfollow(f: &mut HashMap<Uid, HashSet<u64>>, u: &Uid, id: u64) {
    if let Some(set) = f.get_mut(u) {
        set.remove(&id);
        if set.is_empty() {
            f.remove(u);
        }
    }
}

impl Audience for Registry {
    fn user(&mut self, tenant: &TenantId, uid: &Uid, out: &Out) {
        let ids: Vec<u64> = match self.users.get(tenant).and_then(|u| u.get(uid)) {
            Some(ids) => ids.clone(),
            None => return,
        };
        for id in ids {
            self.push(id, out.clone());
        }
    }

    fn members(
        &mut self,
        tenant: &TenantId,
        members: &HashSet<Uid>,
        except: Option<&Uid>,
        out: &Out,
    ) {
        let Some(users) = self.users.get(tenant) else {
            return;
        };
        // Walk the smaller side: online users of the tenant, or the group's members.
        let ids: Vec<u64> = if users.len() < members.len() {
            users
                .iter()
                .filter(|(u, _)| members.contains(*u) && Some(*u) != except)
                .flat_map(|(_, ids)| ids.iter().copied())
                .collect()
        } else {
            members
                .iter()
                .filter(|u| Some(*u) != except)
                .filter_map(|u| users.get(u))
                .flat_map(|ids| ids.iter().copied())
                .collect()
        };
        for id in ids {
            self.push(id, out.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64) -> Out {
        Out::Frame {
            kind: "read",
            event_seq: Some(n),
            frame: Arc::from(format!("{n}")),
        }
    }

    #[test]
    fn a_full_queue_drops_only_that_connection_and_marks_it_overflowed() {
        let t = TenantId::parse("t").expect("tenant");
        let (a, b) = (Uid::parse("a").expect("uid"), Uid::parse("b").expect("uid"));
        let mut r = Registry::new(2);
        let mut slow = r.register(t.clone(), a.clone());
        let mut fast = r.register(t.clone(), b.clone());
        for n in 1..=3 {
            r.user(&t, &a, &frame(n));
            r.user(&t, &b, &frame(n));
            // The fast connection takes each frame at once.
            assert_eq!(fast.rx.try_recv().ok(), Some(frame(n)));
        }
        assert!(slow.overflowed.load(Ordering::Acquire));
        assert_eq!(r.len(), 1, "only the slow connection is dropped");
        // The slow one got what fit, then its queue ended.
        assert_eq!(slow.rx.try_recv().ok(), Some(frame(1)));
        assert_eq!(slow.rx.try_recv().ok(), Some(frame(2)));
        assert!(matches!(
            slow.rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        assert!(!fast.overflowed.load(Ordering::Acquire));
    }

    #[test]
    fn unregister_forgets_the_user_and_its_presence_follows() {
        let t = TenantId::parse("t").expect("tenant");
        let (a, b) = (Uid::parse("a").expect("uid"), Uid::parse("b").expect("uid"));
        let mut r = Registry::new(4);
        let reg = r.register(t.clone(), a.clone());
        r.follow(reg.id, vec![b.clone()]);
        assert_eq!(r.followers(&t, &b), vec![reg.id]);
        r.unregister(reg.id);
        r.unregister(reg.id);
        assert!(r.followers(&t, &b).is_empty());
        assert!(r.is_empty());
        assert!(r.users.is_empty() && r.followers.is_empty());
    }
}
