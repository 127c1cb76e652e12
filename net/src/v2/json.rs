//! The JSON etcd v2 answers with, byte for byte as Go's `encoding/json` writes it: fields in
//! etcd's order, empty ones left out (`omitempty`), HTML-safe string escaping, a trailing
//! newline. Written by hand so the bytes do not depend on a serializer's choices.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A node as etcd's `NodeExtern`: a file (`value`) or a directory (`dir`, `nodes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// Empty for the root, which etcd shows without a key.
    pub key: String,
    pub value: Option<String>,
    pub dir: bool,
    /// RFC 3339 time the node expires at, for nodes with a TTL.
    pub expiration: Option<String>,
    /// Seconds left, for nodes with a TTL (0 = none, left out).
    pub ttl: i64,
    pub nodes: Vec<Node>,
    pub modified_index: i64,
    pub created_index: i64,
    /// The lease behind the node's TTL (not shown; 0 = none).
    pub lease: i64,
}

impl Node {
    /// A file node.
    pub fn file(key: &str, value: String, modified: i64, created: i64, lease: i64) -> Node {
        let mut n = Node::bare(key, false, modified, created);
        n.value = Some(value);
        n.lease = lease;
        n
    }

    /// A directory node without children.
    pub fn dir(key: &str, modified: i64, created: i64, lease: i64) -> Node {
        let mut n = Node::bare(key, true, modified, created);
        n.lease = lease;
        n
    }

    /// A node with only key and indexes (the `node` of delete events), `dir` as given.
    pub fn bare(key: &str, dir: bool, modified: i64, created: i64) -> Node {
        let mut n = Node::default();
        n.key = key.to_string();
        n.dir = dir;
        n.modified_index = modified;
        n.created_index = created;
        n
    }

    /// Every lease in this node and its children.
    pub fn leases(&self, out: &mut Vec<i64>) {
        let mut stack = vec![self];
        while let Some(n) = stack.pop() {
            if n.lease != 0 {
                out.push(n.lease);
            }
            stack.extend(n.nodes.iter());
        }
    }

    /// Fill `ttl` and `expiration` of this node and its children from `lookup(lease)`, which
    /// gives (seconds left, expiration) for leases that still exist.
    pub fn fill_ttls(&mut self, lookup: &dyn Fn(i64) -> Option<(i64, String)>) {
        let mut stack = vec![self];
        while let Some(n) = stack.pop() {
            if n.lease != 0 {
                if let Some((ttl, expiration)) = lookup(n.lease) {
                    n.ttl = ttl;
                    n.expiration = Some(expiration);
                }
            }
            stack.extend(n.nodes.iter_mut());
        }
    }
}

/// Dropped iteratively, so a very deep tree cannot overflow the stack.
impl Drop for Node {
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.nodes);
        while let Some(mut n) = stack.pop() {
            stack.append(&mut n.nodes);
        }
    }
}

/// A v2 response body: the action and the node(s) concerned (etcd's `Event`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub action: &'static str,
    pub node: Option<Node>,
    pub prev_node: Option<Node>,
}

impl Event {
    pub fn new(action: &'static str, node: Node, prev_node: Option<Node>) -> Event {
        Event { action, node: Some(node), prev_node }
    }

    /// The body, newline-terminated.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        out.push_str("{\"action\":");
        write_str(&mut out, self.action);
        if let Some(n) = &self.node {
            out.push_str(",\"node\":");
            write_node(&mut out, n);
        }
        if let Some(n) = &self.prev_node {
            out.push_str(",\"prevNode\":");
            write_node(&mut out, n);
        }
        out.push_str("}\n");
        out.into_bytes()
    }
}

/// One node as JSON. Iterative, like everything that walks node trees here: a tree is as deep
/// as its longest key has segments, which a client controls.
pub fn write_node(out: &mut String, root: &Node) {
    write_head(out, root);
    let mut stack: Vec<(&Node, usize)> = vec![(root, 0)];
    while let Some((n, next)) = stack.last_mut() {
        let n: &Node = n;
        if let Some(child) = n.nodes.get(*next) {
            if *next > 0 {
                out.push(',');
            }
            *next += 1;
            write_head(out, child);
            stack.push((child, 0));
        } else {
            write_tail(out, n);
            stack.pop();
        }
    }
}

/// The fields before and including the opening of `nodes`.
fn write_head(out: &mut String, n: &Node) {
    out.push('{');
    let mut sep = "";
    let mut field = |out: &mut String, name: &str| {
        out.push_str(sep);
        sep = ",";
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
    };
    if !n.key.is_empty() {
        field(out, "key");
        write_str(out, &n.key);
    }
    if let Some(v) = &n.value {
        field(out, "value");
        write_str(out, v);
    }
    if n.dir {
        field(out, "dir");
        out.push_str("true");
    }
    if let Some(e) = &n.expiration {
        field(out, "expiration");
        write_str(out, e);
    }
    if n.ttl != 0 {
        field(out, "ttl");
        out.push_str(&n.ttl.to_string());
    }
    if !n.nodes.is_empty() {
        field(out, "nodes");
        out.push('[');
    }
}

/// The end of `nodes` and the fields after it.
fn write_tail(out: &mut String, n: &Node) {
    let mut any =
        !n.key.is_empty() || n.value.is_some() || n.dir || n.expiration.is_some() || n.ttl != 0 || !n.nodes.is_empty();
    if !n.nodes.is_empty() {
        out.push(']');
    }
    for (name, v) in [("modifiedIndex", n.modified_index), ("createdIndex", n.created_index)] {
        if v > 0 {
            if any {
                out.push(',');
            }
            any = true;
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
            out.push_str(&v.to_string());
        }
    }
    out.push('}');
}

/// A JSON string as Go writes it: `"` and `\` escaped, `\n \r \t \b \f` short, other control
/// characters as `\u00XX`, and the HTML-sensitive `< > &` and U+2028/U+2029 as `\uXXXX`.
pub fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                let v = c as u32;
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((v >> shift) & 0xf) as usize] as char);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `t` in UTC as Go's RFC 3339 with nanoseconds (trailing zeros of the fraction dropped):
/// `2024-05-01T12:00:05.25Z`. Times before 1970 are shown as 1970.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, dd) = civil_from_days(days);
    let mut s = format!("{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60);
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, v);
        out
    }

    #[test]
    fn strings_are_escaped_like_go() {
        assert_eq!(s("bar"), "\"bar\"");
        assert_eq!(s("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(s("<a&b>"), "\"\\u003ca\\u0026b\\u003e\"");
        assert_eq!(s("\n\t\u{1}\u{7f}"), "\"\\n\\t\\u0001\u{7f}\"");
        assert_eq!(s("\u{2028}é"), "\"\\u2028é\"");
    }

    #[test]
    fn nodes_leave_out_empty_fields_in_etcds_order() {
        let mut n = Node::file("/foo", "bar".into(), 8, 7, 0);
        let ev = Event::new("set", n.clone(), None);
        assert_eq!(
            String::from_utf8(ev.encode()).unwrap(),
            "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\",\"modifiedIndex\":8,\"createdIndex\":7}}\n"
        );
        n.ttl = 5;
        n.expiration = Some("2020-01-01T00:00:00Z".into());
        let mut out = String::new();
        write_node(&mut out, &n);
        assert_eq!(
            out,
            "{\"key\":\"/foo\",\"value\":\"bar\",\"expiration\":\"2020-01-01T00:00:00Z\",\"ttl\":5,\"modifiedIndex\":8,\"createdIndex\":7}"
        );
        let mut root = Node::default();
        root.dir = true;
        root.nodes.push(Node::dir("/d", 3, 2, 0));
        root.nodes.push(Node::file("/e", String::new(), 4, 4, 0));
        let mut out = String::new();
        write_node(&mut out, &root);
        assert_eq!(
            out,
            "{\"dir\":true,\"nodes\":[{\"key\":\"/d\",\"dir\":true,\"modifiedIndex\":3,\"createdIndex\":2},{\"key\":\"/e\",\"value\":\"\",\"modifiedIndex\":4,\"createdIndex\":4}]}"
        );
    }

    #[test]
    fn deep_trees_neither_recurse_nor_overflow() {
        let mut n = Node::file("/x", "v".into(), 1, 1, 0);
        for _ in 0..200_000 {
            let mut d = Node::dir("/d", 1, 1, 0);
            d.nodes.push(n);
            n = d;
        }
        let mut out = String::new();
        write_node(&mut out, &n);
        assert!(out.ends_with("}],\"modifiedIndex\":1,\"createdIndex\":1}"));
        assert_eq!(out.matches('{').count(), 200_001);
        let mut leases = vec![];
        n.leases(&mut leases);
        n.fill_ttls(&|_| None);
        drop(n);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400, 250_000_000); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.25Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123456789Z");
        let t = UNIX_EPOCH + Duration::new(4_102_444_799, 0);
        assert_eq!(rfc3339(t), "2099-12-31T23:59:59Z");
        // Far future does not panic.
        assert!(rfc3339(UNIX_EPOCH + Duration::from_secs(400 * 366 * 86_400 * 25)).starts_with("11"));
    }
}
