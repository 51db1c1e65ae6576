//! [`TopicTrie`]: topics (byte strings) mapped to values, found by prefix.
//!
//! Pub/sub matching asks "which subscribed topics are prefixes of this first frame?"
//! (RFC 29). A hash map answers it with one lookup per distinct topic length, each
//! hashing up to the whole frame, so a peer that subscribes to 16 000 topics of
//! distinct lengths makes every long message cost tens of megabytes of hashing. A
//! radix tree answers it in one walk down the frame: [`TopicTrie::prefixes`] costs
//! O(length of the frame) byte comparisons, plus one step per matching topic,
//! whatever the number and lengths of the topics held. This is what libzmq's `trie_t`
//! and `mtrie_t` do, with compressed edges so a long topic is one node, not one per
//! byte.
//!
//! Each edge holds its own copy of the bytes it adds (never a slice of a caller's
//! buffer, which could keep a large read buffer alive), so the tree holds at most the
//! bytes of its distinct topics plus a fixed cost per node, and at most two nodes per
//! topic. Every walk is a loop, dropping included: a tree as deep as its topics are
//! long never recurses, so it cannot overflow a stack.

use std::fmt;

/// A map from topics to values with prefix lookup.
pub(crate) struct TopicTrie<V> {
    root: Node<V>,
    len: usize,
}

/// One node: the topic spelled by the labels from the root to here, and the nodes
/// that extend it.
struct Node<V> {
    /// The bytes this node adds to its parent's topic (empty only for the root).
    label: Box<[u8]>,
    /// The value of the topic that ends here, if one does.
    value: Option<V>,
    /// Sorted by the first byte of their labels, which all differ.
    children: Vec<Node<V>>,
}

impl<V> Node<V> {
    fn new(label: &[u8], value: Option<V>) -> Node<V> {
        Node {
            label: label.into(),
            value,
            children: Vec::new(),
        }
    }

    /// The child whose label starts with `byte`, or where it would go.
    fn child_index(&self, byte: u8) -> Result<usize, usize> {
        self.children
            .binary_search_by_key(&Some(byte), |child| child.label.first().copied())
    }

    /// The child that `rest` continues into, and what is left of `rest` after it.
    fn step<'d>(&self, rest: &'d [u8]) -> Option<(&Node<V>, &'d [u8])> {
        let first = *rest.first()?;
        let child = self.children.get(self.child_index(first).ok()?)?;
        Some((child, rest.strip_prefix(&*child.label)?))
    }

    /// Cuts this node's label after `at` bytes: the rest moves to a new only child,
    /// with the value and the children.
    fn split(&mut self, at: usize) {
        let (head, tail) = self.label.split_at(at.min(self.label.len()));
        let tail = Node {
            label: tail.into(),
            value: self.value.take(),
            children: std::mem::take(&mut self.children),
        };
        self.label = head.into();
        self.children = vec![tail];
    }

    /// A node with no value and one child becomes that child, its label extended.
    fn merge_only_child(&mut self) {
        if self.value.is_some() || self.children.len() != 1 {
            return;
        }
        let Some(child) = self.children.pop() else {
            return;
        };
        self.label = [&*self.label, &*child.label].concat().into();
        self.value = child.value;
        self.children = child.children;
    }
}

impl<V> Default for TopicTrie<V> {
    fn default() -> TopicTrie<V> {
        TopicTrie {
            root: Node::new(&[], None),
            len: 0,
        }
    }
}

impl<V> TopicTrie<V> {
    /// Number of topics.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The value of `topic` itself.
    #[cfg(test)]
    pub(crate) fn get(&self, topic: &[u8]) -> Option<&V> {
        let mut node = &self.root;
        let mut rest = topic;
        while !rest.is_empty() {
            (node, rest) = node.step(rest)?;
        }
        node.value.as_ref()
    }

    /// The value of `topic` itself, to change.
    pub(crate) fn get_mut(&mut self, topic: &[u8]) -> Option<&mut V> {
        let mut node = &mut self.root;
        let mut rest = topic;
        while let Some(&first) = rest.first() {
            let index = node.child_index(first).ok()?;
            let child = node.children.get_mut(index)?;
            rest = rest.strip_prefix(&*child.label)?;
            node = child;
        }
        node.value.as_mut()
    }

    /// The value of `topic`, made by `make` if the topic is new.
    pub(crate) fn get_or_insert_with(&mut self, topic: &[u8], make: impl FnOnce() -> V) -> &mut V {
        let mut node = &mut self.root;
        let mut rest = topic;
        while let Some(&first) = rest.first() {
            match node.child_index(first) {
                Err(at) => {
                    node.children.insert(at, Node::new(rest, None));
                    rest = &[];
                    node = &mut node.children[at];
                }
                Ok(index) => {
                    let child = &mut node.children[index];
                    let common = child
                        .label
                        .iter()
                        .zip(rest)
                        .take_while(|(a, b)| a == b)
                        .count();
                    if common < child.label.len() {
                        child.split(common);
                    }
                    rest = &rest[common..];
                    node = child;
                }
            }
        }
        if node.value.is_none() {
            self.len += 1;
        }
        node.value.get_or_insert_with(make)
    }

    /// Removes `topic`; returns its value if it was there.
    pub(crate) fn remove(&mut self, topic: &[u8]) -> Option<V> {
        // First find the way down without changing anything.
        let mut path = Vec::new();
        let mut node = &self.root;
        let mut rest = topic;
        while let Some(&first) = rest.first() {
            let index = node.child_index(first).ok()?;
            path.push(index);
            (node, rest) = node.step(rest)?;
        }
        node.value.as_ref()?;
        let Some((&last, above)) = path.split_last() else {
            self.len -= 1;
            return self.root.value.take();
        };
        let mut parent = &mut self.root;
        for &index in above {
            parent = parent.children.get_mut(index)?;
        }
        let target = parent.children.get_mut(last)?;
        let value = target.value.take();
        // Only the node and its parent can be left without a reason to exist: a
        // node with no value needs two children, except the root.
        if target.children.is_empty() {
            parent.children.remove(last);
            if !above.is_empty() {
                parent.merge_only_child();
            }
        } else {
            target.merge_only_child();
        }
        self.len -= 1;
        value
    }

    /// The values of every topic that is a prefix of `data` (the empty topic
    /// included), shortest topic first.
    pub(crate) fn prefixes<'a>(&'a self, data: &'a [u8]) -> Prefixes<'a, V> {
        Prefixes {
            next: Some((&self.root, data)),
        }
    }

    /// Every value, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        let mut stack = vec![&self.root];
        std::iter::from_fn(move || {
            while let Some(node) = stack.pop() {
                stack.extend(node.children.iter());
                if let Some(value) = &node.value {
                    return Some(value);
                }
            }
            None
        })
    }
}

impl<V> Drop for TopicTrie<V> {
    /// Takes the tree apart with a loop: dropping nested nodes the usual way would
    /// recurse once per level.
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.root.children);
        while let Some(mut node) = stack.pop() {
            stack.append(&mut node.children);
        }
    }
}

impl<V> fmt::Debug for TopicTrie<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicTrie").field("len", &self.len).finish()
    }
}

/// The values of the topics that prefix some data: see [`TopicTrie::prefixes`].
pub(crate) struct Prefixes<'a, V> {
    /// The next node to look at, and what is left of the data below it.
    next: Option<(&'a Node<V>, &'a [u8])>,
}

impl<'a, V> Iterator for Prefixes<'a, V> {
    type Item = &'a V;

    fn next(&mut self) -> Option<&'a V> {
        while let Some((node, rest)) = self.next {
            self.next = node.step(rest);
            if let Some(value) = &node.value {
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn matching(trie: &TopicTrie<u32>, data: &[u8]) -> Vec<u32> {
        trie.prefixes(data).copied().collect()
    }

    #[test]
    fn prefixes_shortest_first() {
        let mut trie = TopicTrie::default();
        *trie.get_or_insert_with(b"weather.", || 0) = 2;
        *trie.get_or_insert_with(b"weather.paris", || 0) = 3;
        *trie.get_or_insert_with(b"news", || 0) = 4;
        assert_eq!(matching(&trie, b"weather.paris.today"), [2, 3]);
        assert_eq!(matching(&trie, b"weather.oslo"), [2]);
        assert!(matching(&trie, b"weather").is_empty());
        assert!(matching(&trie, b"").is_empty());
        trie.get_or_insert_with(b"", || 1);
        assert_eq!(matching(&trie, b"weather.paris"), [1, 2, 3]);
        assert_eq!(matching(&trie, b"sport"), [1]);
        assert_eq!(trie.len(), 4);
    }

    #[test]
    fn splits_and_merges_keep_every_topic() {
        let mut trie = TopicTrie::default();
        for (i, topic) in ["abcd", "ab", "abxy", "a", "abc"].iter().enumerate() {
            trie.get_or_insert_with(topic.as_bytes(), || i as u32);
        }
        assert_eq!(trie.remove(b"ab"), Some(1));
        assert_eq!(trie.remove(b"ab"), None, "gone");
        assert_eq!(trie.remove(b"abx"), None, "never there");
        assert_eq!(matching(&trie, b"abcdef"), [3, 4, 0]);
        assert_eq!(trie.remove(b"abc"), Some(4));
        assert_eq!(trie.remove(b"a"), Some(3));
        assert_eq!(matching(&trie, b"abxyz"), [2]);
        assert_eq!(trie.get(b"abcd"), Some(&0));
        assert_eq!(trie.get(b"abc"), None);
        assert_eq!(trie.len(), 2);
        let mut values: Vec<u32> = trie.values().copied().collect();
        values.sort_unstable();
        assert_eq!(values, [0, 2]);
    }

    #[test]
    fn a_tree_as_deep_as_a_long_topic_neither_recurses_nor_overflows() {
        // 3 000 topics, each a prefix of the next: a path 3 000 nodes deep, built,
        // walked and dropped on a thread with a small stack (a recursive drop needs
        // far more).
        let deep = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                let long = vec![b'a'; 3_000];
                let mut trie = TopicTrie::default();
                for n in 1..=long.len() {
                    trie.get_or_insert_with(&long[..n], || 1u8);
                }
                assert_eq!(trie.prefixes(&long).count(), long.len());
                assert_eq!(trie.prefixes(b"b").count(), 0);
                assert_eq!(trie.values().count(), long.len());
                assert_eq!(trie.remove(&long[..1_500]), Some(1));
                assert_eq!(trie.prefixes(&long).count(), long.len() - 1);
                drop(trie);
            })
            .expect("a thread");
        deep.join().expect("no stack overflow");
    }

    #[test]
    fn distinct_lengths_cost_one_walk() {
        // Topics of distinct lengths: only those that prefix the data are visited,
        // and the walk stops where the data leaves the tree.
        let mut trie = TopicTrie::default();
        let z = vec![b'z'; 2_000];
        for n in 1..=z.len() {
            trie.get_or_insert_with(&z[..n], || n);
        }
        assert_eq!(trie.prefixes(&[b'a'; 2_000]).count(), 0);
        let mut data = vec![b'z'; 10];
        data.extend_from_slice(&[b'a'; 2_000]);
        assert_eq!(
            trie.prefixes(&data).copied().collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
    }

    proptest! {
        /// Matches, lookups and the topic count agree with a plain map after any
        /// sequence of inserts and removals.
        #[test]
        fn agrees_with_a_naive_matcher(
            ops in proptest::collection::vec((any::<bool>(), "[abc]{0,6}"), 0..80),
            probes in proptest::collection::vec("[abc]{0,8}", 1..8),
        ) {
            let mut trie = TopicTrie::default();
            let mut naive: HashMap<String, u32> = HashMap::new();
            for (i, (insert, topic)) in ops.into_iter().enumerate() {
                if insert {
                    let value = trie.get_or_insert_with(topic.as_bytes(), || i as u32);
                    prop_assert_eq!(*value, *naive.entry(topic).or_insert(i as u32));
                } else {
                    prop_assert_eq!(trie.remove(topic.as_bytes()), naive.remove(&topic));
                }
            }
            prop_assert_eq!(trie.len(), naive.len());
            for probe in probes {
                let mut expected: Vec<(usize, u32)> = naive
                    .iter()
                    .filter(|(topic, _)| probe.starts_with(topic.as_str()))
                    .map(|(topic, value)| (topic.len(), *value))
                    .collect();
                expected.sort_unstable();
                let expected: Vec<u32> = expected.into_iter().map(|(_, value)| value).collect();
                prop_assert_eq!(matching(&trie, probe.as_bytes()), expected);
                prop_assert_eq!(trie.get(probe.as_bytes()), naive.get(&probe));
            }
            let mut values: Vec<u32> = trie.values().copied().collect();
            values.sort_unstable();
            let mut expected: Vec<u32> = naive.values().copied().collect();
            expected.sort_unstable();
            prop_assert_eq!(values, expected);
        }
    }
}
