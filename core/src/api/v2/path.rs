//! The v2 paths a write names, and the keys they map onto: `/a/b` is the key `/a/b`, the
//! directory `/a` is every key under the prefix `/a/` and, when created explicitly, its
//! *marker* key `/a/` (empty value, never listed). The root `/` is always a directory.

/// Whether a normalized path is the root.
pub fn is_root(path: &str) -> bool {
    path == "/"
}

/// The proper ancestors of a normalized path, top-down, without the root:
/// `/a/b/c` → `["/a", "/a/b"]`.
pub fn ancestors(path: &str) -> Vec<&str> {
    path.char_indices().skip(1).filter(|&(_, c)| c == '/').map(|(i, _)| &path[..i]).collect()
}

/// The key prefix of everything inside directory `path` (`/a` → `/a/`, `/` → `/`); for a
/// non-root directory it is also the directory's marker key.
pub fn dir_prefix(path: &str) -> String {
    if is_root(path) {
        "/".to_string()
    } else {
        format!("{path}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_are_top_down_without_root() {
        assert_eq!(ancestors("/"), Vec::<&str>::new());
        assert_eq!(ancestors("/a"), Vec::<&str>::new());
        assert_eq!(ancestors("/a/b/c"), vec!["/a", "/a/b"]);
        assert_eq!(ancestors("/ä/ö/ü"), vec!["/ä", "/ä/ö"]);
        assert_eq!(dir_prefix("/"), "/");
        assert_eq!(dir_prefix("/a"), "/a/");
    }
}
