//! The module arrows of `docs/ARCHITECTURE.md` (and `../shared/design/LAYOUT.md`), enforced:
//! a module may use those below it, never those above. Layer 3 (`query`, `mcp`) never
//! names `raw_traces` or the pipeline stages; the shared lower modules (`event`, `privacy`,
//! `pricing`, `metrics`, `store`) never reach up into stages or interfaces.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its unit-test module and without comments.
fn code(p: &Path) -> String {
    let text = std::fs::read_to_string(p).expect("read");
    let body = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text,
    };
    body.lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with("//")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn files_of(module: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let dir = src.join(module);
    if dir.is_dir() {
        rust_files(&dir, &mut out);
    }
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        out.push(file);
    }
    assert!(!out.is_empty(), "no source for module {module}");
    out
}

#[test]
fn module_arrows_point_down() {
    let rules: &[(&str, &[&str])] = &[
        (
            "query",
            &[
                "raw_traces",
                "raw_blocks",
                "store::blocks",
                "raw_sources",
                "raw_kinds",
                "raw_sessions",
                "crate::slow_path",
                "crate::fast_path",
                "crate::capture",
                "crate::mcp",
                "crate::cli",
            ],
        ),
        (
            "mcp",
            &[
                "raw_traces",
                "raw_blocks",
                "store::blocks",
                "raw_sources",
                "raw_kinds",
                "raw_sessions",
                "crate::slow_path",
                "crate::fast_path",
                "crate::capture",
                "crate::cli",
            ],
        ),
        (
            "metrics",
            &[
                "crate::slow_path",
                "crate::query",
                "crate::mcp",
                "crate::cli",
                "crate::capture",
            ],
        ),
        (
            "pricing",
            &[
                "crate::slow_path",
                "crate::query",
                "crate::mcp",
                "crate::cli",
                "crate::metrics",
            ],
        ),
        (
            "privacy",
            &[
                "crate::capture",
                "crate::queue",
                "crate::slow_path",
                "crate::query",
                "crate::cli",
            ],
        ),
        (
            "store",
            &[
                "crate::slow_path",
                "crate::fast_path",
                "crate::capture",
                "crate::query",
                "crate::mcp",
                "crate::cli",
            ],
        ),
        ("event", &["crate::"]),
        // The hook hot path sits below capture (which drains its spool).
        (
            "hook",
            &[
                "crate::capture",
                "crate::slow_path",
                "crate::fast_path",
                "crate::query",
                "crate::mcp",
                "crate::cli",
            ],
        ),
        // install sits below cli and above everything else.
        ("install", &["crate::cli"]),
        (
            "fast_path",
            &[
                "crate::slow_path",
                "crate::capture",
                "crate::query",
                "crate::mcp",
                "crate::cli",
            ],
        ),
        (
            "slow_path",
            &[
                "crate::query",
                "crate::mcp",
                "crate::cli",
                "crate::capture",
                "crate::fast_path",
            ],
        ),
        (
            "capture",
            &[
                "crate::slow_path",
                "crate::fast_path",
                "crate::query",
                "crate::mcp",
                "crate::cli",
                "crate::store",
            ],
        ),
    ];
    let mut broken = Vec::new();
    for (module, forbidden) in rules {
        for f in files_of(module) {
            let c = code(&f);
            for word in *forbidden {
                if c.contains(word) {
                    broken.push(format!("{} names {word}", f.display()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "arrows pointing up:\n{}",
        broken.join("\n")
    );
}
