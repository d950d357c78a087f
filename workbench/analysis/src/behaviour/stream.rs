//! Behaviour over a stream (live analysis): the events the detectors judge are kept across
//! flushes, saved to the case as they arrive, restored from it when the hub restarts, and
//! forgotten once they fall behind the stream's horizon.

use super::{Behaviour, Creation, NONE};
use tapline_store::live::{BehaviourCreation, BehaviourEvent};

/// How far behind the watermark (the latest record time) events are kept.
pub const HORIZON_NS: i64 = 3_600 * 1_000_000_000;
/// Events kept at most (the newest by record time), whatever the horizon.
pub const STREAM_EVENTS: usize = 5_000_000;

impl Behaviour {
    /// Creations (objects principals made) kept so far.
    pub fn creations(&self) -> usize {
        self.creations.items.len()
    }

    /// Events from index `from` on, as the case saves them.
    pub fn saved_events(&self, from: usize) -> Vec<BehaviourEvent> {
        (from..self.id.len()).map(|i| self.saved_event(i)).collect()
    }

    /// Events from index `from` on that windows of records before or after them can reach:
    /// those within `reach_ns` of the earliest or the latest of them, at most `max` (the
    /// earliest and the latest halves), in id order, as the case saves them. What an import
    /// keeps for the imports after it: saving every event of a large capture would cost it a
    /// quarter of its time.
    pub fn saved_edges(&self, from: usize, reach_ns: i64, max: usize) -> Vec<BehaviourEvent> {
        let ts = &self.ts[from.min(self.ts.len())..];
        let (Some(&lo), Some(&hi)) = (ts.iter().min(), ts.iter().max()) else {
            return Vec::new();
        };
        let near = |t: i64| t < lo.saturating_add(reach_ns) || t > hi.saturating_sub(reach_ns);
        let mut idx: Vec<usize> = (from..self.ts.len())
            .filter(|&i| near(self.ts[i]))
            .collect();
        if idx.len() > max {
            idx.sort_by_key(|&i| (self.ts[i], i));
            let latest = idx.split_off(idx.len() - (max - max / 2));
            idx.truncate(max / 2);
            idx.extend(latest);
            idx.sort_unstable();
        }
        idx.into_iter().map(|i| self.saved_event(i)).collect()
    }

    fn saved_event(&self, i: usize) -> BehaviourEvent {
        BehaviourEvent {
            transaction_id: self.id[i],
            ts_ns: self.ts[i],
            endpoint: self.endpoints.items.get(self.endpoint[i] as usize).cloned(),
            actor: self.actor_at(Some(self.actor[i])),
            status: self.status[i],
            credentials: self.creds[i],
            object: self.optional_string(self.object[i]),
            username: self.optional_string(self.username[i]),
        }
    }

    /// Creations from index `from` on, as the case saves them.
    pub fn saved_creations(&self, from: usize) -> Vec<BehaviourCreation> {
        self.creations.items[from.min(self.creations.items.len())..]
            .iter()
            .map(|c| BehaviourCreation {
                endpoint: self
                    .endpoints
                    .items
                    .get(c.endpoint as usize)
                    .cloned()
                    .unwrap_or_default(),
                value: self.string(c.value).to_owned(),
                principal: self.string(c.principal).to_owned(),
                ts_ns: c.ts,
            })
            .collect()
    }

    /// The events and creations a case saved, as they were.
    pub fn restore(events: &[BehaviourEvent], creations: &[BehaviourCreation]) -> Behaviour {
        let mut b = Behaviour::default();
        for e in events {
            let endpoint = e.endpoint.as_deref().map_or(NONE, |k| b.intern_endpoint(k));
            let actor = b.intern_actor(e.actor.clone());
            let object = e.object.as_deref().map_or(NONE, |o| b.strings.id_str(o));
            let username = e.username.as_deref().map_or(NONE, |u| b.strings.id_str(u));
            b.id.push(e.transaction_id);
            b.ts.push(e.ts_ns);
            b.endpoint.push(endpoint);
            b.actor.push(actor);
            b.status.push(e.status);
            b.creds.push(e.credentials);
            b.object.push(object);
            b.username.push(username);
        }
        for c in creations {
            let creation = Creation {
                endpoint: b.intern_endpoint(&c.endpoint),
                value: b.strings.id_str(&c.value),
                principal: b.strings.id_str(&c.principal),
                ts: c.ts_ns,
            };
            b.creations.push(creation);
        }
        b
    }

    /// The earliest time to keep so that at most `max` events remain (the newest by request
    /// time); `None` when all fit.
    pub fn keep_newest(&self, max: usize) -> Option<i64> {
        if self.ts.len() <= max {
            return None;
        }
        let mut ts = self.ts.clone();
        let cut = ts.len() - max;
        let (_, &mut t, _) = ts.select_nth_unstable(cut);
        Some(t)
    }

    /// Forgets what has left the stream: events further than [`HORIZON_NS`] behind
    /// `watermark`, and the oldest beyond [`STREAM_EVENTS`]. Returns the cut when anything was
    /// forgotten (the case's copies before it go too).
    pub fn forget_beyond(&mut self, watermark: i64) -> Option<i64> {
        let horizon = watermark.saturating_sub(HORIZON_NS);
        let cut = self
            .keep_newest(STREAM_EVENTS)
            .map_or(horizon, |c| c.max(horizon));
        (self.forget_before(cut) > 0).then_some(cut)
    }

    /// The latest event time (ns), if any event is kept.
    pub fn latest_ns(&self) -> Option<i64> {
        self.ts.iter().copied().max()
    }

    /// Forgets events older than `before` (ns); returns how many.
    pub fn forget_before(&mut self, before: i64) -> usize {
        let keep: Vec<bool> = self.ts.iter().map(|&t| t >= before).collect();
        let dropped = keep.iter().filter(|k| !**k).count();
        if dropped == 0 {
            return 0;
        }
        fn retain<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        retain(&mut self.id, &keep);
        retain(&mut self.ts, &keep);
        retain(&mut self.endpoint, &keep);
        retain(&mut self.actor, &keep);
        retain(&mut self.status, &keep);
        retain(&mut self.creds, &keep);
        retain(&mut self.object, &keep);
        retain(&mut self.username, &keep);
        dropped
    }

    fn optional_string(&self, id: u32) -> Option<String> {
        (id != NONE).then(|| self.string(id).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{login, see};
    use super::*;

    #[test]
    fn a_restored_stream_judges_as_the_one_saved() {
        let mut b = Behaviour::default();
        for i in 0..12 {
            let tx = login(i, "10.0.0.9", &format!("user{i}"), 401);
            see(&mut b, i, &tx, "/login", None);
        }
        let restored = Behaviour::restore(&b.saved_events(0), &b.saved_creations(0));
        let t = super::super::Thresholds::default();
        let before = b.finish(&t).expect("judged");
        let after = restored.finish(&t).expect("judged");
        assert!(!before.is_empty());
        assert_eq!(before, after);
    }

    #[test]
    fn forgetting_keeps_the_newest_events() {
        let mut b = Behaviour::default();
        for i in 0..10 {
            let tx = login(i * 100, "10.0.0.9", "u", 200);
            see(&mut b, i, &tx, "/login", None);
        }
        let cut = b.keep_newest(4).expect("too many");
        assert_eq!(b.forget_before(cut), 6);
        assert_eq!(b.saved_events(0)[0].transaction_id, 6);
        assert_eq!(b.keep_newest(4), None);
    }

    #[test]
    fn the_edges_saved_are_the_first_and_last_windows_at_most_max() {
        let mut b = Behaviour::default();
        // Events 0..100 a second apart, after one already in the stream.
        see(
            &mut b,
            1_000,
            &login(-50, "10.0.0.1", "u", 200),
            "/login",
            None,
        );
        for i in 0..100 {
            let tx = login(i, "10.0.0.9", "u", 401);
            see(&mut b, i, &tx, "/login", None);
        }
        let ids = |events: Vec<BehaviourEvent>| -> Vec<i64> {
            events.iter().map(|e| e.transaction_id).collect()
        };
        const SEC: i64 = 1_000_000_000;
        let edges = ids(b.saved_edges(1, 10 * SEC, 100));
        let expected: Vec<i64> = (0..10).chain(90..100).collect();
        assert_eq!(edges, expected);
        // At most 6: the 3 earliest and the 3 latest.
        assert_eq!(ids(b.saved_edges(1, 10 * SEC, 6)), [0, 1, 2, 97, 98, 99]);
        // A reach longer than the span keeps everything.
        assert_eq!(ids(b.saved_edges(1, 1_000 * SEC, 1_000)).len(), 100);
        assert!(b.saved_edges(101, 10 * SEC, 10).is_empty());
    }
}
