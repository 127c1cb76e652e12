//! v2 paths and how they map onto the one key space.
//!
//! A v2 path `/a/b` is the key `/a/b`. A directory is a key prefix: `/a` is a directory when
//! some key starts with `/a/`; an explicitly created empty directory is kept alive by a
//! *marker* key, the directory path plus a trailing slash (`/a/`), whose value is empty and
//! which is never listed as a node. The root `/` is always a directory. When one key is both a
//! file and a prefix of other keys (possible only through the v3 API), the file wins: the path
//! is a file, listings do not show the keys below it, and v2 cannot write below it (104);
//! reading such a key directly still works.

/// Normalize a request path as etcd does (`path.Join("/", p)`): a leading `/`, no empty or
/// `.` segments, `..` resolved without climbing above the root, no trailing `/`.
pub fn normalize(raw: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in raw.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = String::with_capacity(raw.len() + 1);
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

pub use keel_core::api::v2::path::{ancestors, dir_prefix, is_root};

/// The v2 path a key is shown as: the key itself, or for a marker key its directory.
/// `None` for keys the v2 API cannot show (not starting with `/`, or the bare `/`).
pub fn key_to_path(key: &[u8]) -> Option<(String, bool)> {
    let s = String::from_utf8_lossy(key);
    if !s.starts_with('/') || s.len() < 2 {
        return None;
    }
    match s.strip_suffix('/') {
        Some(dir) => Some((dir.to_string(), true)),
        None => Some((s.into_owned(), false)),
    }
}

/// Whether a name (one path segment) is hidden: it starts with `_`.
pub fn is_hidden_name(name: &str) -> bool {
    name.starts_with('_')
}

/// Whether `key_path`, seen from a recursive watch on `watch_path`, lies in a hidden part of
/// the tree (some segment below the watched path starts with `_`), as etcd decides it.
pub fn hidden_below(watch_path: &str, key_path: &str) -> bool {
    if key_path == watch_path {
        return false;
    }
    let rest = if is_root(watch_path) { key_path } else { key_path.strip_prefix(watch_path).unwrap_or(key_path) };
    rest.contains("/_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_path_join() {
        assert_eq!(normalize(""), "/");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("//"), "/");
        assert_eq!(normalize("foo"), "/foo");
        assert_eq!(normalize("/foo/"), "/foo");
        assert_eq!(normalize("//foo///bar//"), "/foo/bar");
        assert_eq!(normalize("/a/./b/../c"), "/a/c");
        assert_eq!(normalize("/../../x"), "/x");
        assert_eq!(normalize("/a/.."), "/");
        assert_eq!(normalize("/ä/%zz"), "/ä/%zz");
    }

    #[test]
    fn keys_map_to_paths() {
        assert_eq!(key_to_path(b"/a/b"), Some(("/a/b".into(), false)));
        assert_eq!(key_to_path(b"/a/"), Some(("/a".into(), true)));
        assert_eq!(key_to_path(b"/"), None);
        assert_eq!(key_to_path(b"foo"), None);
    }

    #[test]
    fn hidden_paths() {
        assert!(is_hidden_name("_x"));
        assert!(!is_hidden_name("x_"));
        assert!(hidden_below("/", "/_a"));
        assert!(hidden_below("/a", "/a/_b/c"));
        assert!(!hidden_below("/a", "/a/b_c"));
        assert!(!hidden_below("/_a", "/_a"));
        assert!(!hidden_below("/_a", "/_a/b"));
    }
}
