//! Single flight: concurrent misses on one key in this process wait for the first one (the
//! leader) instead of each reading the store. The leader hands over the encoded value it stored
//! in the cache; if it fails, is refused or is cancelled, the others read the store themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// What a leader hands over: the encoded value, once there is one.
type Landing = Option<Arc<str>>;

/// The loads in flight in this process, by key.
#[derive(Debug, Default)]
pub(crate) struct Flights(Mutex<HashMap<String, watch::Receiver<Landing>>>);

/// The caller's part in a flight.
pub(crate) enum Role<'a> {
    /// Load, then [`Leader::land`] what was stored.
    Leader(Leader<'a>),
    /// Wait for the leader with [`Follower::wait`].
    Follower(Follower),
}

/// The one caller that loads.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    id: String,
    sender: watch::Sender<Landing>,
}

/// A caller waiting for the leader.
pub(crate) struct Follower(watch::Receiver<Landing>);

impl Flights {
    fn map(&self) -> MutexGuard<'_, HashMap<String, watch::Receiver<Landing>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Leads the flight for `id`, or follows the one already in the air.
    pub(crate) fn join(&self, id: &str) -> Role<'_> {
        let mut map = self.map();
        if let Some(receiver) = map.get(id) {
            return Role::Follower(Follower(receiver.clone()));
        }
        let (sender, receiver) = watch::channel(None);
        map.insert(id.to_owned(), receiver);
        Role::Leader(Leader {
            flights: self,
            id: id.to_owned(),
            sender,
        })
    }
}

impl Leader<'_> {
    /// Hands `encoded` to the followers and ends the flight.
    pub(crate) fn land(self, encoded: &str) {
        self.sender.send_replace(Some(encoded.into()));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.flights.map().remove(&self.id);
    }
}

impl Follower {
    /// The leader's value, or `None` if it ended without one.
    pub(crate) async fn wait(mut self) -> Option<Arc<str>> {
        let landed = self.0.wait_for(Option::is_some).await.ok()?;
        landed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_what_the_leader_lands() {
        let flights = Flights::default();
        let Role::Leader(leader) = flights.join("k") else {
            panic!("the first caller leads")
        };
        let Role::Follower(follower) = flights.join("k") else {
            panic!("the second follows")
        };
        assert!(matches!(flights.join("other"), Role::Leader(_)));
        leader.land("42");
        assert_eq!(follower.wait().await.as_deref(), Some("42"));
        assert!(
            matches!(flights.join("k"), Role::Leader(_)),
            "the flight is over"
        );
    }

    #[tokio::test]
    async fn followers_are_released_empty_when_the_leader_gives_up() {
        let flights = Flights::default();
        let leader = flights.join("k");
        let Role::Follower(follower) = flights.join("k") else {
            panic!("the second follows")
        };
        drop(leader);
        assert_eq!(follower.wait().await, None);
    }
}
