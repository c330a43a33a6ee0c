//! Topic authority: which topics a guest may publish and subscribe to.
//!
//! The host decides, not the guests: each store's [`crate::ShmCtx`] carries
//! the [`Grants`] its embedder gave it, and the `pub-sub` functions refuse
//! everything else with `not-permitted`. A guest starts with no grant at all.
//!
//! ```
//! use shm_host::Grants;
//!
//! let camera = Grants::none().publish("camera/*");
//! assert!(camera.may_publish("camera/front"));
//! assert!(!camera.may_publish("lidar"));
//! assert!(!camera.may_subscribe("camera/front"));
//! ```

/// A topic name, or a prefix ending in `*` (`*` alone is every topic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPattern(String);

impl TopicPattern {
    /// The pattern `pattern`: a topic name, or a prefix followed by `*`.
    pub fn new(pattern: impl Into<String>) -> TopicPattern {
        TopicPattern(pattern.into())
    }

    /// Does `topic` match?
    pub fn matches(&self, topic: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => topic.starts_with(prefix),
            None => self.0 == topic,
        }
    }
}

impl std::fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a guest may do with topics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    publish: Vec<TopicPattern>,
    subscribe: Vec<TopicPattern>,
}

impl Grants {
    /// Nothing: neither publish nor subscribe.
    pub fn none() -> Grants {
        Grants::default()
    }

    /// Every topic, both ways (a component that runs alone, or tests).
    pub fn all() -> Grants {
        Grants::none().publish("*").subscribe("*")
    }

    /// Also may publish the topics `pattern` matches.
    pub fn publish(mut self, pattern: impl Into<String>) -> Grants {
        self.publish.push(TopicPattern::new(pattern));
        self
    }

    /// Also may subscribe to the topics `pattern` matches.
    pub fn subscribe(mut self, pattern: impl Into<String>) -> Grants {
        self.subscribe.push(TopicPattern::new(pattern));
        self
    }

    /// May the guest publish `topic`?
    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish.iter().any(|p| p.matches(topic))
    }

    /// May the guest subscribe to `topic`?
    pub fn may_subscribe(&self, topic: &str) -> bool {
        self.subscribe.iter().any(|p| p.matches(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_and_prefixes() {
        assert!(TopicPattern::new("a").matches("a"));
        assert!(!TopicPattern::new("a").matches("ab"));
        assert!(TopicPattern::new("a/*").matches("a/b"));
        assert!(!TopicPattern::new("a/*").matches("a"));
        assert!(TopicPattern::new("*").matches(""));
        let g = Grants::none().subscribe("x");
        assert!(g.may_subscribe("x") && !g.may_publish("x"));
        assert!(Grants::all().may_publish("anything"));
        assert!(!Grants::none().may_subscribe("anything"));
    }
}
