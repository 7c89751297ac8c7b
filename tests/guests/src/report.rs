//! The tally and the per-check output lines:
//! `PASS <test>: <what>`, `FAIL <test>: <what>: <detail>`, `SKIP <test>: <why>`.

use core::fmt::Display;

use crate::println;

/// Counts of passed and failed checks, and the test now running.
pub struct Report<'a> {
    pass: u32,
    fail: u32,
    test: &'a str,
}

impl<'a> Report<'a> {
    pub fn new() -> Self {
        Self {
            pass: 0,
            fail: 0,
            test: "guest",
        }
    }

    /// Names the test the following checks belong to.
    pub fn begin(&mut self, test: &'a str) {
        self.test = test;
    }

    /// Records a passed check.
    pub fn pass(&mut self, what: impl Display) {
        self.pass += 1;
        println!("PASS {}: {}", self.test, what);
    }

    /// Records a failed check.
    pub fn fail(&mut self, what: impl Display, detail: impl Display) {
        self.fail += 1;
        println!("FAIL {}: {}: {}", self.test, what, detail);
    }

    /// Records a check that passed if `ok`; `detail` says what was seen when it did not.
    pub fn check(&mut self, ok: bool, what: impl Display, detail: impl Display) -> bool {
        if ok {
            self.pass(what);
        } else {
            self.fail(what, detail);
        }
        ok
    }

    /// Says why the current test (or part of it) did not run; not counted.
    pub fn skip(&mut self, why: impl Display) {
        println!("SKIP {}: {}", self.test, why);
    }

    /// (passed, failed).
    pub fn counts(&self) -> (u32, u32) {
        (self.pass, self.fail)
    }
}
