//! Matching console output against a boot case's expected and forbidden patterns.
//!
//! The console carries two kinds of line, told apart by their first character:
//!
//! - **domain lines** `(name) text`: everything a guest prints. The hypervisor adds the
//!   prefix itself, so a guest cannot produce a line that does not start with `(`;
//! - **hypervisor lines**: every other line (`[INFO ] cpu0: ...` log lines, the indented
//!   detail lines of the platform summary and of exception dumps, `hyp: ...` lines).
//!
//! A [`Pattern`] names the kind of line it is for and is anchored at the start of that
//! line, so a guest's output can never meet an expectation about the hypervisor.

use anyhow::{Result, bail};
use regex::Regex;

/// Forbidden on hypervisor lines in every case, whatever the case file says (unless the
/// case sets `builtin_fail = false`). Written as in a case file: anywhere on the line.
pub const BUILTIN_FAIL: &[&str] = &[".*panicked", ".*EXCEPTION"];

/// Which lines a pattern is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Hypervisor lines (not starting with `(`).
    Hypervisor,
    /// Lines of the domain with this name, `(name) ...`.
    Domain(String),
    /// Lines of any domain (written `(*)`).
    AnyDomain,
}

/// One pattern of a case: a source and a regex anchored at the start of the line (for a
/// domain, at the start of the text after `(name) `).
#[derive(Debug, Clone)]
pub struct Pattern {
    source: Source,
    re: Regex,
    written: String,
}

/// A console line, split by where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line the hypervisor wrote itself.
    Hypervisor(&'a str),
    /// `(name) text`: the output of domain `name`.
    Domain { name: &'a str, text: &'a str },
}

impl<'a> Line<'a> {
    /// Classifies a console line (line ending already removed).
    pub fn classify(line: &'a str) -> Self {
        let Some(rest) = line.strip_prefix('(') else {
            return Line::Hypervisor(line);
        };
        // The hypervisor writes `(name) text`; anything else starting with `(` is still a
        // domain's line (for no domain name a pattern can give, so only `(*)` sees it).
        match rest.split_once(')') {
            Some((name, text)) => Line::Domain {
                name,
                text: text.strip_prefix(' ').unwrap_or(text),
            },
            None => Line::Domain {
                name: "",
                text: line,
            },
        }
    }
}

/// Whether `name` could be a domain's name in a pattern: letters, digits, `-`, `_`, `.`.
fn is_domain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl Pattern {
    /// Parses a pattern as written in a case file (placeholders already substituted):
    /// `(name) REGEX` for the lines of domain `name`, `(*) REGEX` for any domain's lines,
    /// `(name)` or `(*)` alone for any line of that domain; anything else is a regex for
    /// hypervisor lines. Either way the regex must match from the start of the line (of the
    /// text after the prefix, for a domain).
    pub fn parse(written: &str) -> Result<Self> {
        let (source, regex) = match written.strip_prefix('(') {
            Some(rest) => {
                let Some((name, after)) = rest.split_once(')') else {
                    bail!(
                        "pattern {written:?} starts with `(` but has no `)`: a pattern that \
                         starts with `(` names a domain, `(NAME) REGEX` or `(*) REGEX` \
                         (hypervisor lines never start with `(`)"
                    );
                };
                let source = match name {
                    "*" => Source::AnyDomain,
                    n if is_domain_name(n) => Source::Domain(n.to_owned()),
                    _ => bail!(
                        "pattern {written:?}: `({name})` is not a domain name or `(*)`; a \
                         pattern that starts with `(` names a domain (hypervisor lines never \
                         start with `(`)"
                    ),
                };
                let regex = match after.strip_prefix(' ') {
                    Some(regex) => regex,
                    None if after.is_empty() => "",
                    None => bail!(
                        "pattern {written:?}: put one space after `({name})`, as on the console"
                    ),
                };
                (source, regex)
            }
            None => {
                if written.starts_with(r"\(") {
                    bail!(
                        "pattern {written:?} can never match: hypervisor lines never start \
                         with `(`; write `(name) text` (unescaped) for a domain's lines"
                    );
                }
                (Source::Hypervisor, written)
            }
        };
        let re = Regex::new(&format!("^(?:{regex})"))
            .map_err(|e| anyhow::anyhow!("bad pattern {written:?}: {e}"))?;
        Ok(Self {
            source,
            re,
            written: written.to_owned(),
        })
    }

    /// The pattern as written in the case file.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Which lines the pattern is for.
    #[cfg(test)]
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Whether `line` is of the pattern's source and matches it from its start.
    pub fn matches(&self, line: Line<'_>) -> bool {
        match (&self.source, line) {
            (Source::Hypervisor, Line::Hypervisor(text)) => self.re.is_match(text),
            (Source::AnyDomain, Line::Domain { text, .. }) => self.re.is_match(text),
            (Source::Domain(want), Line::Domain { name, text }) => {
                want == name && self.re.is_match(text)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

/// Follows console output line by line: `expect` patterns must appear in order, one line
/// each; any `fail` pattern ends the case. `unordered` patterns must each appear on a line
/// of their own, in any order (for output of several guests that run side by side).
#[derive(Debug, Clone)]
pub struct Matcher {
    expect: Vec<Pattern>,
    fail: Vec<Pattern>,
    seen: usize,
    unordered: Vec<(Pattern, bool)>,
}

impl Matcher {
    /// A matcher waiting for `expect[0]`.
    pub fn new(expect: Vec<Pattern>, fail: Vec<Pattern>) -> Self {
        Self {
            expect,
            fail,
            seen: 0,
            unordered: Vec::new(),
        }
    }

    /// Also requires each of `patterns`, in any order, each on a different line.
    pub fn with_unordered(mut self, patterns: Vec<Pattern>) -> Self {
        self.unordered = patterns.into_iter().map(|p| (p, false)).collect();
        self
    }

    /// Takes one line; returns the fail pattern it matched, if any.
    pub fn feed(&mut self, line: &str) -> Option<&Pattern> {
        let line = Line::classify(line);
        if let Some(bad) = self.fail.iter().find(|p| p.matches(line)) {
            return Some(bad);
        }
        if self.expect.get(self.seen).is_some_and(|p| p.matches(line)) {
            self.seen += 1;
        }
        if let Some((_, seen)) = self
            .unordered
            .iter_mut()
            .find(|(p, seen)| !*seen && p.matches(line))
        {
            *seen = true;
        }
        None
    }

    /// Whether every expected pattern has been seen.
    pub fn done(&self) -> bool {
        self.seen == self.expect.len() && self.unordered.iter().all(|(_, seen)| *seen)
    }

    /// The next expected pattern not yet seen.
    pub fn waiting_for(&self) -> Option<&Pattern> {
        self.expect.get(self.seen).or_else(|| {
            self.unordered
                .iter()
                .find(|(_, seen)| !*seen)
                .map(|(p, _)| p)
        })
    }
}

/// A console line with its line ending and any carriage returns removed.
pub fn clean_line(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .replace('\r', "")
        .trim_end_matches('\n')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(v: &[&str]) -> Vec<Pattern> {
        v.iter().map(|p| Pattern::parse(p).unwrap()).collect()
    }

    fn m(expect: &[&str], fail: &[&str]) -> Matcher {
        Matcher::new(pats(expect), pats(fail))
    }

    #[test]
    fn classifies_lines() {
        assert_eq!(
            Line::classify("[INFO ] cpu0: hi"),
            Line::Hypervisor("[INFO ] cpu0: hi")
        );
        assert_eq!(
            Line::classify("  gic       GICv3"),
            Line::Hypervisor("  gic       GICv3")
        );
        assert_eq!(
            Line::classify("(solo) PASS x"),
            Line::Domain {
                name: "solo",
                text: "PASS x"
            }
        );
        assert_eq!(
            Line::classify("(solo) "),
            Line::Domain {
                name: "solo",
                text: ""
            }
        );
        assert_eq!(
            Line::classify("(broken"),
            Line::Domain {
                name: "",
                text: "(broken"
            }
        );
    }

    #[test]
    fn hypervisor_patterns_never_match_domain_lines() {
        let p = Pattern::parse(r"\[INFO \] cpu\d+: boot complete").unwrap();
        assert_eq!(p.source(), &Source::Hypervisor);
        assert!(p.matches(Line::classify("[INFO ] cpu0: boot complete: 4 of 4")));
        assert!(!p.matches(Line::classify("(evil) [INFO ] cpu0: boot complete")));
        // Anchored at the start of the line.
        assert!(!p.matches(Line::classify("x [INFO ] cpu0: boot complete")));
        let anywhere = Pattern::parse(".*boot complete").unwrap();
        assert!(anywhere.matches(Line::classify("[INFO ] cpu0: boot complete")));
        assert!(!anywhere.matches(Line::classify("(evil) boot complete")));
        let exit = Pattern::parse("hyp: power off, exit status 0").unwrap();
        assert!(!exit.matches(Line::classify("(g) hyp: power off, exit status 0")));
        assert!(exit.matches(Line::classify("hyp: power off, exit status 0")));
    }

    #[test]
    fn domain_patterns_match_that_domain_only() {
        let p = Pattern::parse(r"(solo) PASS smccc: .*").unwrap();
        assert_eq!(p.source(), &Source::Domain("solo".into()));
        assert!(p.matches(Line::classify("(solo) PASS smccc: ok")));
        assert!(!p.matches(Line::classify("(other) PASS smccc: ok")));
        assert!(!p.matches(Line::classify("(solo) guest: PASS smccc: ok")));
        assert!(!p.matches(Line::classify("[INFO ] cpu0: (solo) PASS smccc: ok")));
        let any = Pattern::parse("(*) FAIL ").unwrap();
        assert!(any.matches(Line::classify("(a) FAIL x")));
        assert!(any.matches(Line::classify("(b.c-d) FAIL y")));
        assert!(!any.matches(Line::classify("(a) PASS x FAIL y")));
        assert!(!any.matches(Line::classify("FAIL x")));
        let whole = Pattern::parse("(toomany)").unwrap();
        assert!(whole.matches(Line::classify("(toomany) ")));
        assert!(whole.matches(Line::classify("(toomany) anything")));
        assert!(!whole.matches(Line::classify("(toomanyx) anything")));
        assert!(!whole.matches(Line::classify("[INFO ] (toomany) x")));
    }

    #[test]
    fn rejects_ambiguous_patterns() {
        for bad in [
            r"\(solo\) PASS",
            "(solo PASS",
            "(a|b) x",
            "(?:x) y",
            "(solo)PASS",
            "(solo) (unclosed",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} accepted");
        }
        // An empty hypervisor pattern matches any hypervisor line; it is legal.
        assert!(Pattern::parse("").unwrap().matches(Line::classify("x")));
    }

    #[test]
    fn expects_in_order_one_line_each() {
        let mut m = m(
            &["GICv3", r"CPU \d+ online", "boot complete", "boot complete"],
            &[],
        );
        assert!(m.feed("boot complete").is_none()); // too early: ignored
        assert_eq!(m.waiting_for().unwrap().as_str(), "GICv3");
        m.feed("GICv3 at 0x8000000");
        m.feed("(g) CPU 0 online");
        assert_eq!(m.waiting_for().unwrap().as_str(), r"CPU \d+ online");
        m.feed("CPU 0 online");
        m.feed("boot complete: 4 of 4 CPUs online");
        assert!(!m.done(), "one line meets one ordered expectation");
        m.feed("boot complete again");
        assert!(m.done());
        assert!(m.waiting_for().is_none());
    }

    #[test]
    fn fail_patterns_win_and_respect_sources() {
        let mut m = m(
            &["boot complete"],
            &[".*panicked", r"\[ERROR\]", "(*) FAIL ", "(toomany)"],
        );
        assert_eq!(
            m.feed("[ERROR] cpu0: hypervisor panicked at x")
                .unwrap()
                .as_str(),
            ".*panicked"
        );
        assert!(m.feed("(g) I panicked at nothing").is_none());
        assert!(m.feed("(g) [ERROR] fake").is_none());
        assert!(m.feed("(g) PASS but FAIL later").is_none());
        assert_eq!(m.feed("(g) FAIL x").unwrap().as_str(), "(*) FAIL ");
        assert_eq!(m.feed("(toomany) hi").unwrap().as_str(), "(toomany)");
        assert!(!m.done());
        assert!(m.feed("boot complete").is_none());
        assert!(m.done());
    }

    #[test]
    fn unordered_patterns_need_a_line_each() {
        let mut m = Matcher::new(pats(&["start"]), vec![])
            .with_unordered(pats(&[r"(*) done \w+", r"(*) done \w+"]));
        m.feed("start");
        m.feed("(l) done left");
        assert!(!m.done(), "one line meets one unordered pattern");
        assert_eq!(m.waiting_for().unwrap().as_str(), r"(*) done \w+");
        m.feed("other");
        m.feed("done right");
        assert!(
            !m.done(),
            "a hypervisor line does not meet a domain pattern"
        );
        m.feed("(r) done right");
        assert!(m.done());
    }

    #[test]
    fn cleans_lines() {
        assert_eq!(clean_line(b"hello\r\n"), "hello");
        assert_eq!(clean_line(b"a\rb\n"), "ab");
        assert_eq!(clean_line(b"no newline"), "no newline");
        assert_eq!(clean_line(b"bad \xff byte\n"), "bad \u{fffd} byte");
    }
}
