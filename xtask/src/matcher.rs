//! Matching console output against a boot case's expected and forbidden patterns.

use regex::Regex;

/// Forbidden in every case's output, whatever the case file says.
pub const BUILTIN_FAIL: &[&str] = &["panicked at", "EXCEPTION"];

/// Follows console output line by line: `expect` patterns must appear in order, any `fail`
/// pattern ends the case. Several expectations may be met by one line, left to right.
/// `unordered` patterns must each appear on a line of its own, in any order (for output
/// of several guests that run side by side).
#[derive(Debug, Clone)]
pub struct Matcher {
    expect: Vec<Regex>,
    fail: Vec<Regex>,
    seen: usize,
    unordered: Vec<(Regex, bool)>,
}

impl Matcher {
    /// A matcher waiting for `expect[0]`.
    pub fn new(expect: Vec<Regex>, fail: Vec<Regex>) -> Self {
        Self {
            expect,
            fail,
            seen: 0,
            unordered: Vec::new(),
        }
    }

    /// Also requires each of `patterns`, in any order, each on a different line.
    pub fn with_unordered(mut self, patterns: Vec<Regex>) -> Self {
        self.unordered = patterns.into_iter().map(|re| (re, false)).collect();
        self
    }

    /// Takes one line; returns the fail pattern it matched, if any.
    pub fn feed(&mut self, line: &str) -> Option<&Regex> {
        if let Some(bad) = self.fail.iter().find(|re| re.is_match(line)) {
            return Some(bad);
        }
        let mut pos = 0;
        while let Some(m) = self
            .expect
            .get(self.seen)
            .and_then(|re| re.find_at(line, pos))
        {
            pos = m.end();
            self.seen += 1;
        }
        if let Some((_, seen)) = self
            .unordered
            .iter_mut()
            .find(|(re, seen)| !*seen && re.is_match(line))
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
    pub fn waiting_for(&self) -> Option<&Regex> {
        self.expect.get(self.seen).or_else(|| {
            self.unordered
                .iter()
                .find(|(_, seen)| !*seen)
                .map(|(re, _)| re)
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
mod unordered_tests {
    use super::*;

    #[test]
    fn unordered_patterns_need_a_line_each() {
        let re = |p: &str| Regex::new(p).unwrap();
        let mut m = Matcher::new(vec![re("start")], vec![])
            .with_unordered(vec![re(r"done \w+"), re(r"done \w+")]);
        m.feed("start");
        m.feed("done left");
        assert!(!m.done(), "one line meets one unordered pattern");
        assert_eq!(m.waiting_for().unwrap().as_str(), r"done \w+");
        m.feed("other");
        m.feed("done right");
        assert!(m.done());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(expect: &[&str], fail: &[&str]) -> Matcher {
        let re = |v: &[&str]| v.iter().map(|p| Regex::new(p).unwrap()).collect();
        Matcher::new(re(expect), re(fail))
    }

    #[test]
    fn expects_in_order() {
        let mut m = m(&["GICv3", r"CPU \d+ online", "boot complete"], &[]);
        assert!(m.feed("boot complete").is_none()); // too early: ignored
        assert_eq!(m.waiting_for().unwrap().as_str(), "GICv3");
        m.feed("[INFO ] GICv3 at 0x8000000");
        m.feed("[INFO ] CPU 0 online");
        assert!(!m.done());
        m.feed("[INFO ] boot complete: 4 of 4 CPUs online");
        assert!(m.done());
        assert!(m.waiting_for().is_none());
    }

    #[test]
    fn one_line_meets_several_expectations_left_to_right() {
        let mut a = m(&["a", "b"], &[]);
        a.feed("xx a yy b");
        assert!(a.done());
        let mut b = m(&["b", "a"], &[]);
        b.feed("xx a yy b");
        assert!(!b.done());
        let mut twice = m(&["online", "online"], &[]);
        twice.feed("CPU 0 online");
        assert!(!twice.done());
        twice.feed("CPU 1 online");
        assert!(twice.done());
    }

    #[test]
    fn fail_patterns_win() {
        let mut m = m(&["boot complete"], &["panicked at", "EXCEPTION"]);
        assert_eq!(
            m.feed("panicked at src/main.rs:1:1 boot complete")
                .unwrap()
                .as_str(),
            "panicked at"
        );
        assert!(!m.done());
        assert!(m.feed("all good").is_none());
    }

    #[test]
    fn cleans_lines() {
        assert_eq!(clean_line(b"hello\r\n"), "hello");
        assert_eq!(clean_line(b"a\rb\n"), "ab");
        assert_eq!(clean_line(b"no newline"), "no newline");
        assert_eq!(clean_line(b"bad \xff byte\n"), "bad \u{fffd} byte");
    }
}
