//! How a resource version is held in memory: its compact JSON text, validated once when
//! written, and parsed trees handed out through a small shared cache.
//!
//! A `serde_json::Value` tree takes about nine times the memory of the JSON it came from, so
//! the store keeps text: reads and search pages splice it into responses unchanged, and the
//! search engine gets trees from [`ParseCache`], which keeps only the recently used ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use serde_json::value::RawValue;

/// Gives every stored text a number no other text ever had, so a cache entry can never be
/// confused with a later version (not even after `/_sim/reset` rewinds version numbers).
static NEXT_SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// One version's JSON, as stored.
#[derive(Debug, Clone)]
pub struct StoredJson {
    sequence: u64,
    json: Arc<RawValue>,
}

impl StoredJson {
    /// Serializes `resource` (compact) for storage.
    pub fn new(resource: &Value) -> Self {
        let text = serde_json::to_string(resource).unwrap_or_else(|_| "{}".to_string());
        // Text serialized from a Value is valid JSON, so this cannot fail; `{}` is a fallback.
        let json: Box<RawValue> = RawValue::from_string(text)
            .unwrap_or_else(|_| RawValue::from_string("{}".to_string()).unwrap_or_default());
        Self {
            sequence: NEXT_SEQUENCE.fetch_add(1, Ordering::Relaxed),
            json: Arc::from(json),
        }
    }

    /// The JSON, ready to splice into a response.
    pub fn raw(&self) -> &RawValue {
        &self.json
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.json.get()
    }
}

/// Parsed trees by stored-text sequence number.
type Generation = HashMap<u64, Arc<Value>>;

/// Parsed trees of recently used stored versions, bounded: two generations of at most
/// `capacity` entries each; when the young one fills up, the old one is dropped.
#[derive(Debug)]
pub struct ParseCache {
    capacity: usize,
    generations: Mutex<(Generation, Generation)>,
}

impl Default for ParseCache {
    fn default() -> Self {
        Self::new(20_000)
    }
}

impl ParseCache {
    /// A cache of up to `2 * capacity` parsed resources.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            generations: Mutex::new((HashMap::new(), HashMap::new())),
        }
    }

    /// The parsed tree of `stored`, from the cache or parsed now.
    pub fn parse(&self, stored: &StoredJson) -> Arc<Value> {
        let key = stored.sequence;
        {
            let mut guard = self.generations.lock().unwrap_or_else(|p| p.into_inner());
            let (young, old) = &mut *guard;
            if let Some(hit) = young.get(&key) {
                return Arc::clone(hit);
            }
            if let Some(hit) = old.remove(&key) {
                young.insert(key, Arc::clone(&hit));
                return hit;
            }
        }
        // Parse outside the lock; the text was valid JSON when stored.
        let parsed = Arc::new(serde_json::from_str::<Value>(stored.text()).unwrap_or(Value::Null));
        let mut guard = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        let (young, old) = &mut *guard;
        if young.len() >= self.capacity {
            *old = std::mem::take(young);
        }
        young.insert(key, Arc::clone(&parsed));
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_round_trips_and_sequences_are_unique() {
        let a = StoredJson::new(&json!({"resourceType": "Patient", "id": "a"}));
        let b = StoredJson::new(&json!({"resourceType": "Patient", "id": "a"}));
        assert_eq!(a.text(), r#"{"resourceType":"Patient","id":"a"}"#);
        assert_ne!(a.sequence, b.sequence);
    }

    #[test]
    fn the_cache_is_bounded_and_answers_from_either_generation() {
        let cache = ParseCache::new(2);
        let stored: Vec<StoredJson> = (0..5).map(|i| StoredJson::new(&json!({"n": i}))).collect();
        for s in &stored {
            assert_eq!(
                cache.parse(s)["n"],
                json!(s.text()[5..6].parse::<i32>().unwrap_or(-1))
            );
        }
        let cached = {
            let guard = cache.generations.lock().unwrap_or_else(|p| p.into_inner());
            guard.0.len() + guard.1.len()
        };
        assert!(cached <= 4);
        assert_eq!(
            cache.parse(&stored[0])["n"],
            json!(0),
            "evicted entries are parsed again"
        );
    }
}
