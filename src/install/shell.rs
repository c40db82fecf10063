//! The shell words of a hook or status-line command: quoting what `install` writes, and
//! splitting what it finds so that it can tell its own commands from anybody else's.
//!
//! Claude Code runs these commands with `sh -c`, so the words follow POSIX `sh` quoting;
//! [`split`] understands single quotes, double quotes and backslashes, and gives up (None)
//! on anything it cannot read for sure, in which case the command is never taken for ours.

/// `s` as one `sh` word: bare when it is made of safe characters only, else single-quoted.
pub fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'@' | b'%' | b'+' | b':' | b',' | b'.' | b'/' | b'-'
                )
        });
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `KEY=value` as one word, the value quoted.
pub fn assignment(key: &str, value: &str) -> String {
    format!("{key}={}", quote(value))
}

/// The words of `cmd`, or None when it holds an unterminated quote.
pub fn split(cmd: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => cur.push(c),
                            '\n' => {}
                            c => {
                                cur.push('\\');
                                cur.push(c);
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next()? {
                    '\n' => {}
                    c => cur.push(c),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// A command read back: the `env NAME=value` assignments before it, the program and its
/// arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub env: Vec<(String, String)>,
    pub program: String,
    pub args: Vec<String>,
}

/// Reads `[env] [NAME=value]... program args...`; None when the command uses shell syntax
/// beyond plain words (pipes, `;`, `&&`, redirections) or cannot be split.
pub fn parse(cmd: &str) -> Option<Command> {
    if cmd.contains(['|', ';', '&', '<', '>', '`', '$', '(', ')']) && !quoted_only(cmd) {
        return None;
    }
    let words = split(cmd)?;
    let mut it = words.into_iter().peekable();
    if it.peek().is_some_and(|w| w == "env") {
        it.next();
    }
    let mut env = Vec::new();
    while let Some(w) = it.peek() {
        match w.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !k.as_bytes()[0].is_ascii_digit() =>
            {
                env.push((k.to_string(), v.to_string()));
                it.next();
            }
            _ => break,
        }
    }
    let program = it.next()?;
    Some(Command {
        env,
        program,
        args: it.collect(),
    })
}

/// Whether every shell metacharacter of `cmd` sits inside single quotes (as in a quoted
/// path that contains `&`): such a command is still plain words.
fn quoted_only(cmd: &str) -> bool {
    let mut in_single = false;
    for c in cmd.chars() {
        match c {
            '\'' => in_single = !in_single,
            '|' | ';' | '&' | '<' | '>' | '`' | '$' | '(' | ')' | '"' | '\\' if !in_single => {
                return false;
            }
            _ => {}
        }
    }
    !in_single
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_round_trips_through_split() {
        for s in [
            "/usr/bin/blueplane",
            "/home/a b/bin",
            "it's",
            "",
            "redis+unix:///tmp/x y/redis.sock",
            "a&b",
            "$HOME",
        ] {
            assert_eq!(split(&quote(s)).unwrap(), vec![s.to_string()], "{s}");
        }
        assert_eq!(quote("/usr/bin/blueplane"), "/usr/bin/blueplane");
        assert_eq!(quote("a b"), "'a b'");
    }

    #[test]
    fn parse_reads_env_program_and_args() {
        let c = parse(
            "env BLUEPLANE_HOME='/tmp/a b' REDIS_URL=redis://x '/opt/my bin/blueplane' hook claude",
        )
        .unwrap();
        assert_eq!(
            c.env,
            vec![
                ("BLUEPLANE_HOME".to_string(), "/tmp/a b".to_string()),
                ("REDIS_URL".to_string(), "redis://x".to_string())
            ]
        );
        assert_eq!(c.program, "/opt/my bin/blueplane");
        assert_eq!(c.args, vec!["hook", "claude"]);
        assert_eq!(parse("blueplane statusline").unwrap().program, "blueplane");
        assert_eq!(
            parse("'/a&b/blueplane' statusline").unwrap().program,
            "/a&b/blueplane"
        );
    }

    #[test]
    fn shell_syntax_is_not_a_plain_command() {
        assert!(parse("blueplane hook claude | tee x").is_none());
        assert!(parse("blueplane hook claude; rm -rf x").is_none());
        assert!(parse("$CLAUDE_PROJECT_DIR/bin/blueplane hook claude").is_none());
        assert!(parse("'unterminated").is_none());
        assert!(parse("").is_none());
    }
}
