//! Host tests.
mod evtchn;
mod gnttab;
