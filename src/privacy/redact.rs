//! Secret redaction for captured transcript text.
//!
//! Capture runs every piece of text it is about to store through [`redact`]
//! before anything reaches Redis (and therefore before anything reaches
//! SQLite); `blueplane doctor --privacy` uses [`contains_secret`] and
//! [`secret_kinds`] to audit what is already stored.
//!
//! Each detected secret is replaced by `[REDACTED:<kind>]`, where `<kind>` is
//! one of [`KINDS`]. For "key = value" style rules (URL passwords, `Bearer`
//! headers, `password = "…"` assignments) only the value is replaced, so the
//! surrounding structure (scheme, user, host, key name, JSON quoting) survives.
//!
//! Invariants:
//! * the output of [`redact`] contains nothing [`contains_secret`] reports, so
//!   redaction is idempotent: `redact(&redact(x)) == redact(x)`;
//! * text without secrets is returned as `Cow::Borrowed`, without copying;
//! * markers contain no quotes or backslashes, so redacting inside a JSON
//!   string keeps the JSON valid.
//!
//! The rules are compiled once into two alternation regexes (literal-prefixed
//! tokens, and `key = value` rules), each with a multi-literal prefilter, so
//! clean text costs about two fast linear scans; only the (rare) candidate
//! spans are inspected further, by cheap checks that reject near misses such
//! as `sk-learn`, `password = None` or `token: String`.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use regex::{Regex, RegexBuilder};

/// Every kind name that can appear in a `[REDACTED:<kind>]` marker.
pub const KINDS: &[&str] = &[
    "anthropic_api_key",
    "openai_api_key",
    "stripe_key",
    "github_token",
    "gitlab_token",
    "slack_token",
    "aws_access_key_id",
    "aws_secret_access_key",
    "google_api_key",
    "npm_token",
    "pypi_token",
    "huggingface_token",
    "jwt",
    "private_key",
    "bearer_token",
    "basic_auth",
    "url_password",
    "generic_secret",
];

/// Replaces every secret in `text` with `[REDACTED:<kind>]`; borrows when nothing matched.
pub fn redact(text: &str) -> Cow<'_, str> {
    let spans = collect_spans(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16 * spans.len());
    let mut last = 0;
    for span in &spans {
        out.push_str(&text[last..span.start]);
        out.push_str("[REDACTED:");
        out.push_str(RULES[span.rule].kind);
        out.push(']');
        last = span.end;
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

/// True when `text` contains anything `redact` would replace (used by `blueplane doctor --privacy` to scan stored data).
pub fn contains_secret(text: &str) -> bool {
    let mut found = false;
    scan(text, |_| {
        found = true;
        false
    });
    found
}

/// The kinds of secret detected in `text`, for the doctor report (e.g. ["anthropic_api_key", "url_password"]).
///
/// Kinds are listed once each, in order of first appearance, and are exactly
/// the kinds of the markers [`redact`] would insert.
pub fn secret_kinds(text: &str) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = Vec::new();
    for span in collect_spans(text) {
        let kind = RULES[span.rule].kind;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

/// How a candidate match is validated (and where scanning resumes after it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    /// Self-identifying token with a fixed prefix: it must not be glued to a
    /// preceding alphanumeric (so `task-…` never yields `sk-…`).
    Token,
    /// Like [`Check::Token`], and the token must contain a digit (rejects
    /// slugs such as `sk-ant-colony-simulation-notes`).
    TokenWithDigit,
    /// Whole match is the secret; no further checks.
    Always,
    /// `Bearer <token>`: the token must look random, not like a word.
    Bearer,
    /// `scheme://user:password@host`: the password must not be a placeholder.
    UrlPassword,
    /// `key = value` assignment: value checks, non-secret key names
    /// (`progressToken`), and code shapes for unquoted values.
    Assignment,
    /// `UPPER_CASE_KEY=value` (dotenv / shell): like [`Check::Assignment`]
    /// but any unquoted word is accepted.
    EnvAssignment,
}

struct Rule {
    kind: &'static str,
    /// Which compiled union the rule belongs to: [`LITERAL`] or [`KEYWORD`].
    set: usize,
    /// Regex source. Named groups starting with `v` mark the part that is
    /// replaced (`vb` = unquoted value); without them the whole match is.
    /// An optional `kw` group captures the key word.
    pattern: &'static str,
    check: Check,
}

/// Rules whose matches start with a case-sensitive literal (`sk-`, `ghp_`,
/// `://`, `-----BEGIN`, …). Their union gets a fast multi-literal prefilter.
const LITERAL: usize = 0;
/// `key = value` rules. Keys are spelled out in lower, Capitalized and UPPER
/// case per word (covering snake, kebab, camel, Pascal and SCREAMING case)
/// rather than with `(?i)`, which would defeat the literal prefilter.
const KEYWORD: usize = 1;
const SETS: usize = 2;

/// Order matters: for matches starting at the same position, and for
/// overlapping matches with the same span, the earlier (more specific) rule
/// wins and names the marker.
const RULES: &[Rule] = &[
    Rule {
        kind: "anthropic_api_key",
        set: LITERAL,
        pattern: r"sk-ant-[A-Za-z0-9_-]{20,}",
        check: Check::TokenWithDigit,
    },
    Rule {
        kind: "openai_api_key",
        set: LITERAL,
        pattern: r"sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20,})",
        check: Check::TokenWithDigit,
    },
    Rule {
        kind: "stripe_key",
        set: LITERAL,
        pattern: r"[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
        check: Check::Token,
    },
    Rule {
        kind: "github_token",
        set: LITERAL,
        pattern: r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
        check: Check::Token,
    },
    Rule {
        kind: "gitlab_token",
        set: LITERAL,
        pattern: r"glpat-[A-Za-z0-9_-]{20,}",
        check: Check::Token,
    },
    Rule {
        kind: "slack_token",
        set: LITERAL,
        pattern: r"(?:xox[abprs]|xapp-[0-9])-[A-Za-z0-9-]{10,}",
        check: Check::TokenWithDigit,
    },
    Rule {
        kind: "aws_access_key_id",
        set: LITERAL,
        pattern: r"(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)",
        check: Check::Token,
    },
    Rule {
        kind: "aws_secret_access_key",
        set: KEYWORD,
        pattern: r#"(?:(?:aws|Aws|AWS)[_-]?)?(?:secret|Secret|SECRET)[_-]?(?:access|Access|ACCESS)[_-]?(?:key|Key|KEY)\\*["']?[ \t]*(?::=|=>|=|:)[ \t]*\\*["']?(?P<v>[A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        check: Check::Always,
    },
    Rule {
        kind: "google_api_key",
        set: LITERAL,
        pattern: r"AIza[A-Za-z0-9_-]{35,}",
        check: Check::Token,
    },
    Rule {
        kind: "npm_token",
        set: LITERAL,
        pattern: r"npm_[A-Za-z0-9]{36,}",
        check: Check::Token,
    },
    Rule {
        kind: "pypi_token",
        set: LITERAL,
        pattern: r"pypi-AgE[A-Za-z0-9_-]{40,}",
        check: Check::Token,
    },
    Rule {
        kind: "huggingface_token",
        set: LITERAL,
        pattern: r"hf_[A-Za-z0-9]{30,}",
        check: Check::Token,
    },
    Rule {
        kind: "jwt",
        set: LITERAL,
        pattern: r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        check: Check::Token,
    },
    Rule {
        kind: "private_key",
        set: LITERAL,
        // A complete block (lazy up to the first END line; the body class
        // also admits JSON escapes such as `\n`), or, when the END line is
        // missing (truncated output), the header plus the header fields and
        // base64 lines that follow it. A lone BEGIN line (a constant in code)
        // is not a key.
        pattern: concat!(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
            r"(?:[A-Za-z0-9+/= \t\r\n:,.\\-]*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
            r"|(?:(?:[ \t]*(?:\r?\n|(?:\\{1,2}r)?\\{1,2}n))+[ \t]*[A-Za-z-]+: [^\r\n\\]*)*",
            r"(?:(?:[ \t]*(?:\r?\n|(?:\\{1,2}r)?\\{1,2}n))+[ \t]*[A-Za-z0-9+/=]{16,}[ \t]*)+",
            r"(?:(?:[ \t]*(?:\r?\n|(?:\\{1,2}r)?\\{1,2}n))+[ \t]*[A-Za-z0-9+/=]+)?)",
        ),
        check: Check::Always,
    },
    Rule {
        kind: "bearer_token",
        set: LITERAL,
        // `Bearer <token>`, and GitHub/DRF style `Authorization: token <token>`.
        pattern: concat!(
            r"(?:Bearer|bearer|BEARER|(?:authorization|Authorization|AUTHORIZATION)",
            r#"\\*["']?[ \t]*[:=][ \t]*\\*["']?[ \t]*(?:token|Token|TOKEN))"#,
            r"[ \t]+(?P<v>[A-Za-z0-9._~+/=-]{16,})",
        ),
        check: Check::Bearer,
    },
    Rule {
        kind: "basic_auth",
        set: KEYWORD,
        pattern: r#"(?:authorization|Authorization|AUTHORIZATION)\\*["']?[ \t]*[:=][ \t]*\\*["']?[ \t]*(?:basic|Basic|BASIC)[ \t]+(?P<v>[A-Za-z0-9+/]{8,}={0,2})"#,
        check: Check::Always,
    },
    Rule {
        kind: "url_password",
        set: LITERAL,
        // Starts at `://` (the scheme is kept anyway); the password runs to
        // the last `@` of the authority.
        pattern: r#"://[^ \t\r\n:/?#@"'`<>\\\[\]]*:(?P<v>[^ \t\r\n/?#"'`<>\\]+)@[A-Za-z0-9\[]"#,
        check: Check::UrlPassword,
    },
    Rule {
        kind: "generic_secret",
        set: KEYWORD,
        // dotenv / shell: `UPPER_CASE_KEY=value` (no spaces) takes any
        // unquoted value, even a plain word.
        pattern: concat!(
            r"(?:PASS(?:WORD|WD|PHRASE)|SECRET|TOKEN|(?:API|SECRET|PRIVATE)[_-]?KEY)",
            r#"=(?P<vb>[^ \t\r\n"'`,;&(){}\[\]<>|\\=:][^ \t\r\n"'`,;&(){}\[\]<>|\\]*)"#,
            r#"(?:[ \t\r\n"'`,;&)}\]>|\\]|$)"#,
        ),
        check: Check::EnvAssignment,
    },
    Rule {
        kind: "generic_secret",
        set: KEYWORD,
        // Any other `key = value` / `key: value`. A quoted value is taken as
        // is. An unquoted value must not look like code: it needs a digit or
        // a symbol besides `_ . : -` (so `self.token`, `Token::new`, `String`
        // do not match), must not be followed by `(`, `[`, `{` or `<` (calls,
        // indexing, generics), and a bare `:` needs a following space (YAML),
        // which keeps URL userinfo (`x-access-token:…@host`) out. Further
        // code shapes are rejected by [`bare_value_is_code`].
        pattern: concat!(
            r"(?P<kw>(?:pass|Pass|PASS)(?:word|Word|WORD|wd|WD|phrase|Phrase|PHRASE)",
            r"|secret|Secret|SECRET|token|Token|TOKEN",
            r"|(?:api|Api|API|secret|Secret|SECRET|private|Private|PRIVATE)[_-]?(?:key|Key|KEY))",
            r#"\\*["']?[ \t]*"#,
            r#"(?:(?::=|=>|=|:)[ \t]*"#,
            r#"(?:\\*"(?P<vq>[^"\\ \t\r\n]{6,})\\*"|\\*'(?P<vs>[^'\\ \t\r\n]{6,})\\*')"#,
            r#"|(?::=|=>|=|:[ \t])[ \t]*"#,
            r#"(?P<vb>(?:[^ \t\r\n"'`,;&(){}\[\]<>|\\A-Za-z_.:=-]"#,
            r#"|[A-Za-z_.-][A-Za-z_.:-]*[^ \t\r\n"'`,;&(){}\[\]<>|\\A-Za-z_.:-])"#,
            r#"[^ \t\r\n"'`,;&(){}\[\]<>|\\]*)"#,
            r#"(?:[ \t\r\n"'`,;&)}\]>|\\]|$))"#,
        ),
        check: Check::Assignment,
    },
];

/// One rule compiled on its own and anchored (`^`), used to identify the rule
/// behind a candidate span and to read its value groups.
struct CompiledRule {
    re: Regex,
    /// Value groups (`v…`), with `true` for the unquoted-value group `vb`.
    values: Vec<(usize, bool)>,
    /// The key-word group (`kw`), if any.
    kw: Option<usize>,
}

/// One union of rules, without capture groups: finds candidate spans with a
/// single lazy-DFA scan backed by a multi-literal prefilter.
struct RuleSet {
    union: Regex,
    /// Indices into [`RULES`], in priority order.
    rules: Vec<usize>,
}

struct Engine {
    sets: [RuleSet; SETS],
    /// Each rule's anchored regex, compiled the first time a candidate needs it: most text
    /// has no candidate at all, and a hook process (one payload, then exit) should not pay
    /// for compiling every rule.
    rules: Vec<OnceLock<CompiledRule>>,
}

impl Engine {
    fn rule(&self, i: usize) -> &CompiledRule {
        self.rules[i].get_or_init(|| compile_rule(&RULES[i]))
    }
}

static ENGINE: LazyLock<Engine> = LazyLock::new(|| Engine {
    sets: [compile_set(LITERAL), compile_set(KEYWORD)],
    rules: RULES.iter().map(|_| OnceLock::new()).collect(),
});

fn build(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .size_limit(32 * (1 << 20))
        .dfa_size_limit(16 * (1 << 20))
        .build()
        .expect("redaction patterns must compile")
}

fn compile_set(set: usize) -> RuleSet {
    let rules: Vec<usize> = (0..RULES.len()).filter(|&i| RULES[i].set == set).collect();
    let union = rules
        .iter()
        .map(|&i| format!("(?:{})", without_group_names(RULES[i].pattern)))
        .collect::<Vec<_>>()
        .join("|");
    RuleSet {
        union: build(&union),
        rules,
    }
}

fn compile_rule(rule: &Rule) -> CompiledRule {
    assert!(
        KINDS.contains(&rule.kind),
        "kind {} missing from KINDS",
        rule.kind
    );
    let re = build(&format!("^(?:{})", rule.pattern));
    let mut values = Vec::new();
    let mut kw = None;
    for (idx, name) in re.capture_names().enumerate() {
        match name {
            Some("kw") => kw = Some(idx),
            Some(n) if n.starts_with('v') => values.push((idx, n == "vb")),
            Some(n) => panic!("unknown group name {n} in redaction rule {}", rule.kind),
            None => {}
        }
    }
    CompiledRule { re, values, kw }
}

/// Turns every `(?P<name>` into `(?:` (capture groups only slow the union down).
fn without_group_names(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(i) = rest.find("(?P<") {
        out.push_str(&rest[..i]);
        out.push_str("(?:");
        let after = &rest[i + 4..];
        let close = after.find('>').expect("group name is terminated");
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The literal starts of the token rules of [`RULES`] (`sk-ant-…` starts with `sk-`, …).
/// Every other rule needs a `:` or `=` (key = value, `://user:pass@`, `Authorization:`).
/// **A new rule must keep one of the two true**: its tests (`assert_redacted`) go through
/// this prefilter and fail when it does not.
const TRIGGERS: &[&str] = &[
    "sk-",
    "sk_",
    "rk_",
    "gh",
    "github_pat_",
    "glpat-",
    "xox",
    "xapp-",
    "AKIA",
    "ASIA",
    "AIza",
    "npm_",
    "pypi-",
    "hf_",
    "eyJ",
    "-----BEGIN",
    "Bearer",
    "bearer",
    "BEARER",
];

/// False only when no rule can match `text`: then the engine is not even compiled, which is
/// what keeps a hook process (ids, paths and names, then exit) fast.
fn may_match(text: &str) -> bool {
    text.bytes().any(|b| b == b':' || b == b'=') || TRIGGERS.iter().any(|t| text.contains(t))
}

/// A byte range of the input to be replaced, and the rule that found it.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
    rule: usize,
}

/// Calls `found` for every accepted secret span (unsorted, possibly
/// overlapping); stops early when `found` returns false.
///
/// Each set's union is searched lazily: its next candidate is cached until it
/// is processed or skipped, so each union scans the text about once. A
/// candidate is then attributed to a rule, and its value located, by the
/// rules' own anchored regexes, which only walk the candidate itself.
fn scan(text: &str, mut found: impl FnMut(Span) -> bool) {
    if !may_match(text) {
        return;
    }
    let engine = &*ENGINE;
    // Per set: where its next search starts, and its cached next candidate
    // start (`None` = search again, `Some(None)` = no more candidates).
    let mut from = [0usize; SETS];
    let mut next: [Option<Option<usize>>; SETS] = [None; SETS];
    loop {
        for (k, set) in engine.sets.iter().enumerate() {
            if next[k].is_none() {
                next[k] = Some(set.union.find_at(text, from[k]).map(|m| m.start()));
            }
        }
        // Earliest candidate; on a tie the lower set (more specific rules) goes first.
        let Some((k, m_start)) = next
            .iter()
            .enumerate()
            .filter_map(|(k, n)| n.flatten().map(|start| (k, start)))
            .min_by_key(|&(k, start)| (start, k))
        else {
            break;
        };
        next[k] = None;
        // The union is leftmost-first, so the candidate belongs to the first
        // rule of the set that matches at its start.
        let hay = &text[m_start..];
        let Some((rule, compiled, m_end)) = engine.sets[k].rules.iter().find_map(|&r| {
            let c = engine.rule(r);
            c.re.find(hay).map(|m| (r, c, m_start + m.end()))
        }) else {
            // Unreachable: the union matched here, so one of its rules does.
            from[k] = ceil_char_boundary(text, m_start + 1);
            continue;
        };
        let mut kw = "";
        let value = if compiled.values.is_empty() {
            None
        } else {
            let mut locs = compiled.re.capture_locations();
            compiled.re.captures_read(&mut locs, hay).and_then(|_| {
                if let Some((s, e)) = compiled.kw.and_then(|i| locs.get(i)) {
                    kw = &hay[s..e];
                }
                compiled.values.iter().find_map(|&(idx, bare)| {
                    locs.get(idx).map(|(s, e)| (m_start + s, m_start + e, bare))
                })
            })
        };
        let (start, end, bare) = value.unwrap_or((m_start, m_end, false));
        let accepted = match RULES[rule].check {
            Check::Token => left_boundary_ok(text.as_bytes(), m_start),
            Check::TokenWithDigit => {
                left_boundary_ok(text.as_bytes(), m_start)
                    && text[m_start..m_end].bytes().any(|b| b.is_ascii_digit())
            }
            Check::Always => true,
            Check::Bearer => bearer_ok(&text[start..end]),
            Check::UrlPassword => !is_placeholder(&text[start..end]),
            Check::Assignment | Check::EnvAssignment => {
                value_ok(&text[start..end], bare)
                    && !non_secret_key(&text[..m_start])
                    && (RULES[rule].check == Check::EnvAssignment
                        || !bare
                        || !bare_value_is_code(text, kw, start, end))
            }
        };
        let resume = if accepted {
            if !found(Span { start, end, rule }) {
                return;
            }
            if RULES[rule].check == Check::UrlPassword {
                // Rescan the user part: it may itself be a token.
                m_start + 3
            } else if start > m_start {
                // Rescan the value so a more specific kind can claim it.
                start
            } else {
                m_end
            }
        } else {
            m_start + 1
        };
        let resume = ceil_char_boundary(text, resume.max(m_start + 1));
        from[k] = resume;
        if accepted {
            // Other sets skip what was just consumed. (After a rejection they
            // keep their candidate, which may start at the same position.)
            for j in (0..SETS).filter(|&j| j != k) {
                from[j] = from[j].max(resume);
                if matches!(next[j], Some(Some(start)) if start < resume) {
                    next[j] = None;
                }
            }
        }
    }
}

/// The first char boundary at or after byte `i`, capped at `text.len()`.
fn ceil_char_boundary(text: &str, i: usize) -> usize {
    let mut p = i.min(text.len());
    while !text.is_char_boundary(p) {
        p += 1;
    }
    p
}

/// All accepted spans, sorted and merged so that none overlap. Overlapping
/// spans are united; the span starting first (then the longest, then the most
/// specific rule) names the marker.
fn collect_spans(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    scan(text, |s| {
        spans.push(s);
        true
    });
    if spans.len() < 2 {
        return spans;
    }
    spans.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.rule.cmp(&b.rule))
    });
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match merged.last_mut() {
            Some(last) if s.start < last.end => last.end = last.end.max(s.end),
            _ => merged.push(s),
        }
    }
    merged
}

/// A token must not be glued to a preceding ASCII alphanumeric, except when
/// that character ends an escape: `\n`, `\t`, `\r` (JSON strings) or `%XX`
/// (URL encoding).
fn left_boundary_ok(bytes: &[u8], start: usize) -> bool {
    let Some(&prev) = start.checked_sub(1).and_then(|i| bytes.get(i)) else {
        return true;
    };
    if !prev.is_ascii_alphanumeric() {
        return true;
    }
    let at = |back: usize| start.checked_sub(back).and_then(|i| bytes.get(i).copied());
    let json_escape = matches!(prev, b'n' | b'r' | b't') && at(2) == Some(b'\\');
    let url_escape = prev.is_ascii_hexdigit()
        && at(2).is_some_and(|b| b.is_ascii_hexdigit())
        && at(3) == Some(b'%');
    json_escape || url_escape
}

/// A bearer credential looks random: it has a digit, or is long and mixes
/// upper and lower case. Rejects prose such as "Bearer authentication".
fn bearer_ok(token: &str) -> bool {
    if is_placeholder(token) {
        return false;
    }
    let b = token.as_bytes();
    b.iter().any(u8::is_ascii_digit)
        || (b.len() >= 32
            && b.iter().any(u8::is_ascii_uppercase)
            && b.iter().any(u8::is_ascii_lowercase))
}

/// Value checks for `key = value`: at least 6 bytes, not a placeholder, and
/// an unquoted value must not be a bare number (`max_token = 4096000`).
fn value_ok(value: &str, bare: bool) -> bool {
    value.len() >= 6
        && !is_placeholder(value)
        && !(bare && value.bytes().all(|b| b.is_ascii_digit()))
}

/// Keys ending in the key word that name non-secret tokens: pagination,
/// progress and cancellation handles, tokenizer special tokens. `before` is
/// the text before the key word (`progress` in `progressToken`).
fn non_secret_key(before: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "progress",
        "page",
        "next",
        "continuation",
        "cancel",
        "cancellation",
        "sync",
        "bos",
        "eos",
        "pad",
        "unk",
        "sep",
        "cls",
        "mask",
    ];
    let word = before
        .trim_end_matches(['_', '-'])
        .rsplit(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("");
    PREFIXES.iter().any(|p| {
        word.len() >= p.len()
            && word.as_bytes()[word.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes())
    })
}

/// Code shapes the regex cannot rule out, for an unquoted value between
/// `start` and `end` after key word `kw`:
/// * a pointer type (`*const c_char`);
/// * a type annotation followed by an initializer (`TOKEN: u32 = 5`);
/// * a path of identifiers (`node.colon2_token`, `Self::TOKEN_V2`);
/// * a single identifier with at most one run of digits (`Colon2`, `__u32`),
///   unless the key is a password (`password: hunter2`) or SCREAMING_CASE
///   (YAML / compose style `POSTGRES_TOKEN: abc123`), or the value is long
///   and mixed-case.
fn bare_value_is_code(text: &str, kw: &str, start: usize, end: usize) -> bool {
    let value = &text[start..end];
    if value.starts_with('*') {
        return true;
    }
    let after = text[end..].trim_start_matches([' ', '\t']);
    if after.starts_with('=') && !after.starts_with("==") && !after.starts_with("=>") {
        return true;
    }
    let is_ident = |s: &str| {
        s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let path = value.trim_end_matches([':', '.']);
    let mut segments = path.split('.').flat_map(|s| s.split("::"));
    if !segments.all(is_ident) {
        return false;
    }
    if value.contains(['.', ':']) {
        return true;
    }
    if !kw.bytes().any(|b| b.is_ascii_lowercase()) {
        return false;
    }
    let b = value.as_bytes();
    // Digit runs glued to a letter (`ab12c`), not `_`-separated suffixes
    // (`TOKEN_0_0`, `_bindgen_ty_5`).
    let mut digit_runs = 0;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let letter_before = run_start > 0 && b[run_start - 1].is_ascii_alphabetic();
        let letter_after = b.get(i).is_some_and(u8::is_ascii_alphabetic);
        if letter_before || letter_after {
            digit_runs += 1;
        }
    }
    // Password fields rarely hold typed identifiers; tokens, secrets and keys
    // often do (parser tokens, FFI structs), so they need more evidence.
    let password = kw.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("pass"));
    let runs_needed = if password { 1 } else { 2 };
    let random_looking = digit_runs >= runs_needed
        || (b.len() >= 20
            && b.iter().any(u8::is_ascii_uppercase)
            && b.iter().any(u8::is_ascii_lowercase));
    !random_looking
}

/// Values that are obviously not secrets: variable references, templates,
/// masks, type names, literals like `None`, and earlier redaction markers.
fn is_placeholder(value: &str) -> bool {
    const WORDS: &[&str] = &[
        "none",
        "null",
        "nil",
        "true",
        "false",
        "undefined",
        "string",
        "str",
        "required",
        "optional",
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
        "token",
        "redacted",
        "hidden",
        "masked",
        "example",
    ];
    let b = value.as_bytes();
    let Some(&first) = b.first() else {
        return true;
    };
    if value.starts_with("[REDACTED:")
        || value.starts_with("${")
        || value.starts_with("$(")
        || value.starts_with("#{")
        || value.starts_with("%(")
        || value.contains("${")
        || value.contains("{{")
        || (first == b'{' && value.ends_with('}'))
        || (first == b'<' && value.ends_with('>'))
        || value.eq_ignore_ascii_case("%s")
        || b.iter().all(|&c| c == first)
    {
        return true;
    }
    // A CSS colour (`#f8f8f2`), e.g. Pygments' `Token: '#dcdccc'`.
    if first == b'#' && matches!(b.len(), 4 | 5 | 7 | 9) && b[1..].iter().all(u8::is_ascii_hexdigit)
    {
        return true;
    }
    // `$VAR`
    if first == b'$'
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        return true;
    }
    if value.len() >= 4 && value.as_bytes()[..4].eq_ignore_ascii_case(b"your") {
        return true;
    }
    WORDS.iter().any(|w| value.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test fixtures are assembled at run time so that no complete
    /// token-shaped literal appears in the source (keeps secret scanners quiet).
    fn tok(prefix: &str, body: &str, len: usize) -> String {
        let mut s = String::from(prefix);
        s.extend(body.chars().cycle().take(len));
        s
    }

    fn assert_redacted(input: &str, secret: &str, kind: &str) {
        assert!(KINDS.contains(&kind), "unknown kind {kind}");
        let out = redact(input);
        assert!(
            matches!(out, Cow::Owned(_)),
            "expected a change for {input:?}"
        );
        assert!(
            !out.contains(secret),
            "secret {secret:?} survived in {out:?}"
        );
        let marker = format!("[REDACTED:{kind}]");
        assert!(out.contains(&marker), "missing {marker} in {out:?}");
        assert!(contains_secret(input), "contains_secret missed {input:?}");
        assert!(
            secret_kinds(input).contains(&kind),
            "secret_kinds({input:?}) = {:?}",
            secret_kinds(input)
        );
        assert!(
            !contains_secret(&out),
            "redacted output still flagged: {out:?}"
        );
        assert_eq!(redact(&out), out, "not idempotent for {input:?}");
    }

    fn assert_clean(input: &str) {
        let out = redact(input);
        assert!(
            matches!(out, Cow::Borrowed(_)),
            "false positive: {input:?} -> {out:?}"
        );
        assert!(!contains_secret(input), "contains_secret flagged {input:?}");
        assert!(secret_kinds(input).is_empty());
    }

    #[test]
    fn every_rule_compiles() {
        for i in 0..RULES.len() {
            let _ = ENGINE.rule(i);
        }
    }

    #[test]
    fn the_prefilter_skips_ids_and_paths_only() {
        for clean in [
            "7f3c9a2e-5b1d-4e8a-9c6f-2d4b8e1a0c53",
            "/home/dev/.claude/projects/-home-dev-app/x.jsonl",
            "toolu_01CdxQyezqD7SBnmvXKSa1ro",
            "PostToolUse",
        ] {
            assert!(!may_match(clean), "{clean}");
        }
        for t in TRIGGERS {
            assert!(may_match(&format!("x{t}y")), "{t}");
        }
        assert!(may_match("a=b") && may_match("http://u:p@h"));
    }

    #[test]
    fn kinds_are_unique_and_match_rules() {
        for (i, k) in KINDS.iter().enumerate() {
            assert!(!KINDS[..i].contains(k), "duplicate kind {k}");
            assert!(RULES.iter().any(|r| r.kind == *k), "kind {k} has no rule");
        }
        assert!(RULES.iter().all(|r| KINDS.contains(&r.kind)));
        let compiled: usize = ENGINE.sets.iter().map(|s| s.rules.len()).sum();
        assert_eq!(compiled, RULES.len());
    }

    #[test]
    fn anthropic() {
        let key = tok("sk-ant-api03-", "aB3dE5fG7hJ9kL1mN_p-", 93);
        assert_redacted(
            &format!("export ANTHROPIC_API_KEY={key}"),
            &key,
            "anthropic_api_key",
        );
        assert_redacted(&format!("key is {key}."), &key, "anthropic_api_key");
        assert_clean("the sk-ant- prefix identifies Anthropic keys");
        assert_clean("see sk-ant-colony-simulation-notes for details");
    }

    #[test]
    fn openai() {
        let legacy = tok("sk-", "Ab1Cd2Ef3Gh4", 48);
        assert_redacted(
            &format!("OPENAI_API_KEY=\"{legacy}\""),
            &legacy,
            "openai_api_key",
        );
        let proj = tok("sk-proj-", "Xy7_Zw8-Qr9s", 120);
        assert_redacted(
            &format!("client = OpenAI(api_key='{proj}')"),
            &proj,
            "openai_api_key",
        );
        assert_clean("pip install scikit-learn  # sk-learn is the import name");
        assert_clean("run task-abcdefghij0123456789abcdef and desk-0123456789abcdefghijk");
        assert_clean("sk-proj-management-and-planning-documents-overview");
    }

    #[test]
    fn stripe() {
        let live = tok("sk_live_", "51HxYz0AbC", 99);
        assert_redacted(&format!("Stripe.api_key = {live}"), &live, "stripe_key");
        let test = tok("sk_test_", "4eC39HqLyjWDarjtT1zdp7dc", 24);
        assert_redacted(&format!("key: {test}"), &test, "stripe_key");
        let restricted = tok("rk_live_", "9aZ8bY7c", 32);
        assert_redacted(&format!("({restricted})"), &restricted, "stripe_key");
        assert_clean("set sk_test_mode = true and rk_live_flag");
        assert_clean("the publishable pk_live_ prefix is not secret");
    }

    #[test]
    fn github() {
        for p in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
            let t = tok(p, "A1b2C3d4E5f6", 36);
            assert_redacted(&format!("GITHUB_TOKEN={t}"), &t, "github_token");
        }
        let pat = tok("github_pat_", "11ABCDEFG0123456789_abcdefXYZ", 82);
        assert_redacted(&format!("token {pat} end"), &pat, "github_token");
        assert_clean("ghp_short and graph_traversal and github_pat_ are fine");
    }

    #[test]
    fn gitlab() {
        let t = tok("glpat-", "xYz12-AbC_34", 20);
        assert_redacted(&format!("PRIVATE-TOKEN: {t}"), &t, "gitlab_token");
        assert_clean("glpat-short token prefix");
    }

    #[test]
    fn slack() {
        for p in ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"] {
            let t = tok(p, "123456789012-1234567890123-AbCdEfGh", 50);
            assert_redacted(&format!("SLACK={t}"), &t, "slack_token");
        }
        assert_clean("xoxo-hugs-and-kisses-forever-and-ever and xoxb-");
    }

    #[test]
    fn aws() {
        let id = tok("AKIA", "IOSFODNN7EXAMPL", 16);
        assert_redacted(
            &format!("aws_access_key_id = {id}"),
            &id,
            "aws_access_key_id",
        );
        let sts = tok("ASIA", "Q2W3E4R5T6Y7", 16);
        assert_redacted(
            &format!("\"AccessKeyId\": \"{sts}\""),
            &sts,
            "aws_access_key_id",
        );
        assert_clean("AKIA1234 is too short, AKIAIOSFODNN7EXAMPLEXX is too long");

        let secret = tok("", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY", 40);
        assert_redacted(
            &format!("aws_secret_access_key = {secret}\n"),
            &secret,
            "aws_secret_access_key",
        );
        assert_redacted(
            &format!("{{\"SecretAccessKey\": \"{secret}\"}}"),
            &secret,
            "aws_secret_access_key",
        );
        let out = redact(&format!("AWS_SECRET_ACCESS_KEY={secret}")).into_owned();
        assert_eq!(
            out,
            "AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_access_key]"
        );
        assert_clean("aws_secret_access_key = os.environ[\"AWS_SECRET_ACCESS_KEY\"]");
    }

    #[test]
    fn google() {
        let k = tok("AIza", "SyA1b2C3d4_E5f6-G7", 35);
        assert_redacted(
            &format!("https://maps.googleapis.com/x?key={k}&v=3"),
            &k,
            "google_api_key",
        );
        assert_clean("AIza is the prefix; AIzaShort");
    }

    #[test]
    fn npm() {
        let t = tok("npm_", "a1B2c3D4e5F6", 36);
        assert_redacted(
            &format!("//registry.npmjs.org/:_authToken={t}"),
            &t,
            "npm_token",
        );
        assert_clean("npm_config_cache and npm_package_version are env vars");
    }

    #[test]
    fn pypi() {
        let t = tok("pypi-AgEIcHlwaS5vcmc", "CJDA1Yjk2-_xYz", 150);
        assert_redacted(&format!("password = {t}"), &t, "pypi_token");
        assert_clean("pip install pypi-simple; pypi-server runs locally");
    }

    #[test]
    fn huggingface() {
        let t = tok("hf_", "jYvQaPgUZxHoTJzLVYwW", 34);
        assert_redacted(&format!("HF_TOKEN={t}"), &t, "huggingface_token");
        assert_clean("hf_hub_download and hf_transfer and shelf_abcdefghijklmnopqrstuvwxyzabcdef");
    }

    #[test]
    fn jwt() {
        let header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
        let payload = "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ";
        let sig = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let jwt = format!("{header}.{payload}.{sig}");
        assert_redacted(&format!("id_token: {jwt}"), payload, "jwt");
        assert_redacted(&format!("cookie=session={jwt}; Path=/"), sig, "jwt");
        assert_clean("eyJhbGciOiJIUzI1NiJ9 alone is just base64 JSON, eyJ.eyJ.x too");
    }

    #[test]
    fn bearer() {
        let t = tok("", "abc123XYZ789def456", 40);
        assert_redacted(&format!("Authorization: Bearer {t}"), &t, "bearer_token");
        let out = redact(&format!("Authorization: Bearer {t}\r\n")).into_owned();
        assert_eq!(out, "Authorization: Bearer [REDACTED:bearer_token]\r\n");
        assert_clean("the bearer of bad news; use Bearer authentication");
        assert_clean(
            "curl -H \"Authorization: Bearer $TOKEN\" -H 'Authorization: Bearer ${API_TOKEN}'",
        );
        assert_clean("Authorization: Bearer <token>");
        let hex = tok("", "0123456789abcdef", 40);
        assert_redacted(
            &format!("-H \"Authorization: token {hex}\""),
            &hex,
            "bearer_token",
        );
        assert_clean("Authorization: token-based auth is described in RFC 6750");
    }

    #[test]
    fn bearer_jwt_is_reported_as_jwt() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlMTIz";
        let out = redact(&format!("Authorization: Bearer {jwt}")).into_owned();
        assert_eq!(out, "Authorization: Bearer [REDACTED:jwt]");
    }

    #[test]
    fn basic_auth() {
        let cred = "dXNlcjpodW50ZXIyMjI=";
        assert_redacted(&format!("Authorization: Basic {cred}"), cred, "basic_auth");
        assert_clean("HTTP Basic authentication; Authorization: Basic $CREDS");
    }

    #[test]
    fn private_key_block() {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\nNMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n";
        for label in [
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "EC PRIVATE KEY",
        ] {
            let block = format!("-----BEGIN {label}-----\n{body}-----END {label}-----");
            let input = format!("$ cat key.pem\n{block}\n$ ls\n");
            assert_redacted(
                &input,
                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
                "private_key",
            );
            let out = redact(&input);
            assert_eq!(out, "$ cat key.pem\n[REDACTED:private_key]\n$ ls\n");
        }
        // JSON-escaped newlines.
        let escaped = format!(
            "{{\"content\":\"-----BEGIN PRIVATE KEY-----\\n{}-----END PRIVATE KEY-----\\nok\"}}",
            body.replace('\n', "\\n")
        );
        assert_eq!(
            redact(&escaped),
            "{\"content\":\"[REDACTED:private_key]\\nok\"}"
        );
        // Truncated output: no END line.
        let truncated = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}");
        assert_redacted(
            &truncated,
            "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s",
            "private_key",
        );
        assert_clean(
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
        );
        assert_clean(
            "-----BEGIN CERTIFICATE-----\nMIIDXTCCAkWgAwIBAgIJAJC1\n-----END CERTIFICATE-----",
        );
        assert_clean(
            "_SK_START = b\"-----BEGIN OPENSSH PRIVATE KEY-----\"\n_SK_END = b\"-----END OPENSSH PRIVATE KEY-----\"",
        );
    }

    #[test]
    fn url_password() {
        let out = redact("DATABASE_URL=postgres://admin:S3cr3t!pw@db.internal:5432/app");
        assert_eq!(
            out,
            "DATABASE_URL=postgres://admin:[REDACTED:url_password]@db.internal:5432/app"
        );
        assert_redacted(
            "redis://:hunter2@localhost:6379/0",
            "hunter2",
            "url_password",
        );
        // `@` inside the password: redact up to the last `@` of the authority.
        let out = redact("mysql://root:p@ss@word@10.0.0.1/db");
        assert_eq!(out, "mysql://root:[REDACTED:url_password]@10.0.0.1/db");
        assert_clean("https://example.com:8080/path?q=a@b and git@github.com:org/repo.git");
        assert_clean("ssh://git@github.com/org/repo and http://[::1]:8080/");
        assert_clean("postgres://user:${DB_PASSWORD}@db/app and mysql://root:$PW@h/x");
        assert_clean("amqp://guest:password@localhost:5672 and http://user:<pass>@host");
    }

    #[test]
    fn url_with_token_user_redacts_both() {
        let t = tok("ghp_", "Z9y8X7w6V5u4", 36);
        let input = format!("git clone https://{t}:x-oauth-basic@github.com/o/r.git");
        let out = redact(&input);
        assert_eq!(
            out,
            "git clone https://[REDACTED:github_token]:[REDACTED:url_password]@github.com/o/r.git"
        );
        assert_eq!(secret_kinds(&input), vec!["github_token", "url_password"]);
        assert_eq!(redact(&out), out);
        let input = format!("https://x-access-token:{t}@github.com/o/r");
        assert_eq!(
            redact(&input),
            "https://x-access-token:[REDACTED:github_token]@github.com/o/r"
        );
    }

    #[test]
    fn generic_assignment_positive() {
        let cases = [
            ("password = \"hunter22\"", "hunter22"),
            ("db_password: 'c0rrect-h0rse'", "c0rrect-h0rse"),
            (
                "{\"client_secret\": \"a8f5f167f44f4964e6c998dee827110c\"}",
                "a8f5f167f44f4964e6c998dee827110c",
            ),
            (
                "access_token=ya29.A0ARrdaM-abc123&expires=3600",
                "ya29.A0ARrdaM-abc123",
            ),
            ("apiKey: \"AbCd1234EfGh\"", "AbCd1234EfGh"),
            ("API-KEY: zz9plu5ral", "zz9plu5ral"),
            ("POSTGRES_PASSWORD: hunter22", "hunter22"),
            ("password: s3cr3t", "s3cr3t"),
            ("password: hunter2", "hunter2"),
            (
                "SECRET_KEY = 'django-insecure-7x#k2'",
                "django-insecure-7x#k2",
            ),
            ("POSTGRES_PASSWORD=supersecret", "supersecret"),
            ("export GITLAB_TOKEN=abcdef123456", "abcdef123456"),
            ("passwd := \"pa55word!\"", "pa55word!"),
            ("my token: zq81kd02ls", "zq81kd02ls"),
        ];
        for (input, secret) in cases {
            assert_redacted(input, secret, "generic_secret");
        }
        assert_eq!(
            redact("password = \"hunter22\""),
            "password = \"[REDACTED:generic_secret]\""
        );
        assert_eq!(
            redact("POSTGRES_PASSWORD=supersecret"),
            "POSTGRES_PASSWORD=[REDACTED:generic_secret]"
        );
    }

    #[test]
    fn generic_assignment_prefers_specific_kind() {
        let t = tok("ghp_", "Q1w2E3r4T5y6", 36);
        assert_eq!(
            redact(&format!("token = \"{t}\"")),
            "token = \"[REDACTED:github_token]\""
        );
        assert_eq!(secret_kinds(&format!("api_key: {t}")), vec!["github_token"]);
    }

    #[test]
    fn generic_assignment_negative() {
        let cases = [
            "password = None",
            "password = null; token = undefined; secret = false",
            "token: string",
            "token: String,",
            "pub token: Option<String>,",
            "fn login(password: &str, api_key: &'a str)",
            "password: str = Field(...)",
            "token = ${GITHUB_TOKEN}",
            "token=\"${GITHUB_TOKEN}\"",
            "password: \"{{ vault_db_password }}\"",
            "token: ${{ secrets.GITHUB_TOKEN }}",
            "api_key = os.environ[\"OPENAI_API_KEY\"]",
            "api_key = os.getenv(\"OPENAI_API_KEY\")",
            "token = self.token",
            "const token = await getToken();",
            "let token = parse_token2(input);",
            "secret = secrets.token_hex(32)",
            "password = get_password()",
            "\"max_token\": 1234567",
            "\"input_tokens\": 123456, \"output_tokens\": 654321",
            "token_count = 123456789",
            "passwordHash = computeHash(x)",
            "password == \"hunter22\"",
            "password: \"********\"",
            "api_key: \"<your-api-key>\"",
            "API_KEY=your_api_key_here",
            "password = \"correct horse battery staple\"",
            "Token::new(kind)",
            "the password is stored in the keychain; tokens: many",
            "PWD=/home/user/project",
            "secret: true",
            "password = \"password\"",
            "%(password)s and password='%(password)s'",
            "pToken: *const ::core::ffi::c_char, pw_passwd: *mut c_char",
            "pub const IFLA_INET6_TOKEN: _bindgen_ty_5 = _bindgen_ty_5::IFLA_INET6_TOKEN;",
            "colon2_token: node.colon2_token, semi_token: Colon2, frag_token: __u32,",
            "PresentHistoryToken: D3DKMT_PRESENTHISTORYTOKEN,",
            "pub StorageOffloadZeroDataToken: STORAGE_OFFLOAD_TOKEN_0_0,",
            "clienttoken : super::super::Win32::Foundation:: HANDLE,",
            "\"progressToken\": \"abc-123-def\", \"nextPageToken\": \"CAoQAA9x\"",
            "eos_token: \"</s>\", pad_token = \"<pad>\", unk_token: '[UNK]'",
            "Token: '#dcdccc', Token.Keyword: \"#f8f8f2\"",
        ];
        for input in cases {
            assert_clean(input);
        }
    }

    #[test]
    fn several_secrets() {
        let gh = tok("ghp_", "M1n2B3v4C5x6", 36);
        let aws = tok("AKIA", "ZXCVBNM123456789", 16);
        let ant = tok("sk-ant-api03-", "Qw3rTy_uI0p-", 95);
        let input = format!(
            "env:\n  GH={gh}\n  AWS_ID={aws}\n  url: https://bob:pa55w0rd@example.com\n  claude: {ant}\n  password: \"letmein99\"\n"
        );
        let out = redact(&input);
        for s in [
            gh.as_str(),
            aws.as_str(),
            ant.as_str(),
            "pa55w0rd",
            "letmein99",
        ] {
            assert!(!out.contains(s), "{s} survived in {out}");
        }
        assert_eq!(
            secret_kinds(&input),
            vec![
                "github_token",
                "aws_access_key_id",
                "url_password",
                "anthropic_api_key",
                "generic_secret"
            ]
        );
        assert!(out.contains("https://bob:[REDACTED:url_password]@example.com"));
        assert_eq!(redact(&out), out);
        assert!(!contains_secret(&out));
    }

    #[test]
    fn json_escaped_context() {
        let bearer = tok("", "abc123DEF456ghi789", 48);
        let input = format!(
            "{{\"cmd\":\"curl -H \\\"Authorization: Bearer {bearer}\\\" https://api.example.com\"}}"
        );
        let out = redact(&input);
        assert_eq!(
            out,
            "{\"cmd\":\"curl -H \\\"Authorization: Bearer [REDACTED:bearer_token]\\\" https://api.example.com\"}"
        );
        let ant = tok("sk-ant-api03-", "Zx9Cv8Bn7M_-", 95);
        let gh = tok("ghp_", "K1j2H3g4F5d6", 36);
        let input = format!(
            "{{\"type\":\"tool_result\",\"content\":\"ANTHROPIC_API_KEY={ant}\\n{gh}\\n\\\"password\\\": \\\"s3cretpass\\\"\\n\"}}"
        );
        let out = redact(&input);
        assert!(!out.contains(&ant) && !out.contains(&gh) && !out.contains("s3cretpass"));
        assert_eq!(
            out,
            "{\"type\":\"tool_result\",\"content\":\"ANTHROPIC_API_KEY=[REDACTED:anthropic_api_key]\\n[REDACTED:github_token]\\n\\\"password\\\": \\\"[REDACTED:generic_secret]\\\"\\n\"}"
        );
        assert_eq!(redact(&out), out);
    }

    #[test]
    fn clean_text_is_borrowed() {
        let text = "Refactor the tokenizer: count input_tokens and output_tokens, \
                    see https://docs.rs/regex/latest/regex/ and task-42. \
                    The user asked for a password reset flow; the bearer of the token is checked.\n\
                    {\"role\":\"assistant\",\"usage\":{\"input_tokens\":1234,\"cache_read_input_tokens\":98765}}";
        assert!(matches!(redact(text), Cow::Borrowed(_)));
        assert!(matches!(redact(""), Cow::Borrowed(_)));
        assert_clean(text);
        assert_clean("héllo wörld — ünïcode ✓ sk-learn 日本語のテキスト");
    }

    #[test]
    fn unicode_around_secrets() {
        let t = tok("ghp_", "a1B2c3D4e5F6", 36);
        let out = redact(&format!("clé→{t}←fin 日本")).into_owned();
        assert_eq!(out, "clé→[REDACTED:github_token]←fin 日本");
        assert_redacted(
            "pässwörd: x; password: \"ünïcødé-pw\"",
            "ünïcødé-pw",
            "generic_secret",
        );
    }

    #[test]
    fn idempotent_on_mixed_input() {
        let inputs = [
            format!("a {} b https://u:p4ssw0rd@h c", tok("npm_", "Ab12", 36)),
            format!("token={} and Bearer {}", tok("hf_", "AbCdEfGhIj", 34), tok("", "Zz9Yy8", 30)),
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBYx\n-----END EC PRIVATE KEY-----\npassword: 'abc123xyz'".to_owned(),
            "password=[REDACTED:generic_secret] url://u:[REDACTED:url_password]@h".to_owned(),
        ];
        for input in &inputs {
            let once = redact(input);
            assert_eq!(redact(&once), once, "not idempotent: {input:?}");
            assert!(!contains_secret(&once));
        }
    }

    #[test]
    fn escaped_prefix_boundaries() {
        let t = tok("ghp_", "P0o9I8u7Y6t5", 36);
        // JSON `\n` escape and URL `%3D` directly before the token.
        assert_redacted(&format!("line\\n{t}"), &t, "github_token");
        assert_redacted(&format!("token%3D{t}"), &t, "github_token");
        assert_clean(&format!("xghp_{}", "P0o9I8u7Y6t5".repeat(3)));
    }

    #[test]
    fn private_key_variants() {
        let encrypted = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,5A1C1F8B2E3D4C5B6A7988776655AA\n\nMIIEpAIBAAKCAQEAwJz9kLp1Qx2y3Z4aB5cD6eF7gH8iJ9kL0mN1oP2qR3sT4uV5\n-----END RSA PRIVATE KEY-----";
        assert_eq!(redact(encrypted), "[REDACTED:private_key]");
        let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\nlQOYBF2abcdEBCADm9kLp1Qx2y3Z4aB5cD6eF7gH8iJ9kL0mN1oP2qR3sT4uV5wX\n=a1B2\n-----END PGP PRIVATE KEY BLOCK-----\nnext line";
        assert_eq!(redact(pgp), "[REDACTED:private_key]\nnext line");
        // One-line form, as stored in an env var.
        let inline = "KEY=\"-----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEF -----END PRIVATE KEY-----\"";
        assert_eq!(redact(inline), "KEY=\"[REDACTED:private_key]\"");
        // Two blocks stay two markers; the text between survives.
        let two = format!("{encrypted}\nkeep me\n{encrypted}");
        assert_eq!(
            redact(&two),
            "[REDACTED:private_key]\nkeep me\n[REDACTED:private_key]"
        );
    }

    #[test]
    fn key_name_casings() {
        let cases = [
            ("X-API-Key: abc123def456", "abc123def456"),
            ("x-api-key: abc123def456", "abc123def456"),
            ("clientSecret: \"Zx81-Qw72-Er63\"", "Zx81-Qw72-Er63"),
            ("accessToken = 'eyZ0aGlz1sN0t'", "eyZ0aGlz1sN0t"),
            ("ACCESS_TOKEN=plainword", "plainword"),
            (
                "SessionToken: \"IQoJb3JpZ2luX2VjEJr//////////wEaCXVz\"",
                "IQoJb3JpZ2luX2VjEJr//////////wEaCXVz",
            ),
            ("Passphrase = \"open-sesame-42\"", "open-sesame-42"),
            (
                "PRIVATE_KEY=0x4c0883a69102937d6231471b5dbb6204fe512961708279f1d6",
                "0x4c0883a69102937d6231471b5dbb6204fe512961708279f1d6",
            ),
        ];
        for (input, secret) in cases {
            assert_redacted(input, secret, "generic_secret");
        }
    }

    #[test]
    fn fixture_used_by_privacy_filter() {
        // Same shape as the fixture in `capture::privacy` tests.
        let key = format!("sk-ant-api03-{}", "A".repeat(40));
        assert_redacted(&format!("```\ncode\n``` {key}"), &key, "anthropic_api_key");
    }

    #[test]
    fn short_and_empty_strings() {
        for s in [
            "",
            "a",
            "user",
            "assistant",
            "2025-11-02T10:15:42.123Z",
            "6f1c2a3e-9b7d-4c1e-8f2a-0d9e8c7b6a51",
        ] {
            assert_clean(s);
        }
    }

    #[test]
    fn random_mixtures_are_fully_redacted_and_idempotent() {
        let gh = tok("ghp_", "R4n9D0m1X2y3", 36);
        let ant = tok("sk-ant-api03-", "Hh7_Jj8-Kk9L", 95);
        let aws = tok("ASIA", "ABCDEFGH23456789", 16);
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.dGVzdHNpZ25hdHVyZQ".to_owned();
        let bearer = tok("", "Qq1Ww2Ee3Rr4", 36);
        let secrets: Vec<(String, String)> = vec![
            (gh.clone(), gh),
            (ant.clone(), ant),
            (aws.clone(), aws),
            (jwt.clone(), jwt),
            (format!("Bearer {bearer}"), bearer),
            ("https://alice:Pw0rd!x@example.org/x".to_owned(), "Pw0rd!x".to_owned()),
            ("password: \"tr0ub4dor&3\"".to_owned(), "tr0ub4dor&3".to_owned()),
            (
                "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrandomBase64Body0123\n-----END EC PRIVATE KEY-----".to_owned(),
                "MHcCAQEEIIrandomBase64Body0123".to_owned(),
            ),
        ];
        let noise = [
            "token",
            "password",
            "sk-learn",
            "task-42",
            "Bearer",
            "://",
            "input_tokens",
            "None",
            "secret",
            "eyJ",
            "AKIA",
            "ghp_",
            "héllo",
            "日本",
            "api_key",
            "x",
        ];
        let seps = [
            " ", "\n", "\\n", "\"", "=", ": ", "@", ",", "\\\"", "\t", "/", "'",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rand = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(state >> 33).unwrap_or(0) % n
        };
        for _ in 0..400 {
            let mut text = String::new();
            let mut planted = Vec::new();
            for _ in 0..(2 + rand(10)) {
                text.push_str(seps[rand(seps.len())]);
                if rand(3) == 0 {
                    let (fragment, secret) = &secrets[rand(secrets.len())];
                    text.push_str(fragment);
                    planted.push(secret.as_str());
                } else {
                    text.push_str(noise[rand(noise.len())]);
                }
                text.push_str(seps[rand(seps.len())]);
            }
            let out = redact(&text);
            for secret in &planted {
                assert!(
                    !out.contains(secret),
                    "{secret:?} survived in {out:?} (from {text:?})"
                );
            }
            assert_eq!(redact(&out), out, "not idempotent for {text:?}");
            assert!(!contains_secret(&out), "output still flagged: {out:?}");
            assert_eq!(contains_secret(&text), !planted.is_empty() || out != text);
        }
    }

    #[test]
    fn one_megabyte_input() {
        let chunk = "The assistant read src/main.rs and ran `cargo test`; 42 tests passed. \
                     {\"type\":\"text\",\"usage\":{\"input_tokens\":1200}} see https://example.com/docs\n";
        let mut clean = String::new();
        while clean.len() < 1 << 20 {
            clean.push_str(chunk);
        }
        assert!(matches!(redact(&clean), Cow::Borrowed(_)));
        assert!(!contains_secret(&clean));

        let key = tok("sk-ant-api03-", "Mn8Bv7Cx6Z_-", 95);
        let mut dirty = String::new();
        let mut inserted = 0;
        while dirty.len() < 1 << 20 {
            dirty.push_str(chunk);
            if dirty.len() / 4096 > inserted {
                dirty.push_str(&key);
                dirty.push('\n');
                inserted += 1;
            }
        }
        let out = redact(&dirty);
        assert!(!out.contains(&key));
        assert_eq!(
            out.matches("[REDACTED:anthropic_api_key]").count(),
            inserted
        );
        assert_eq!(out.replace("[REDACTED:anthropic_api_key]", &key), dirty);
    }
}
