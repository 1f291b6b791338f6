//! The token state machine (docs/protocol.md §3.4) and the per-request token check (§3.3).
//!
//! The token says which device filter populated the cache. `"update in progress"` marks a
//! rescan; its owner is `update_pid`, and after `update_timeout` seconds another command may take
//! the update over (or `get_global_info` drops the token so the next command repopulates).

use common::config::SimpleField;
use common::daemon::Response;
use common::log_warn;

/// The token a rescanning command holds.
pub const IN_PROGRESS: &str = "update in progress";
const TOKEN_MAX: usize = 127;
const CMD_MAX: usize = 31;

/// Token and update ownership (guarded by the global lock).
#[derive(Debug)]
pub struct TokenState {
    /// `""` until the first update ends (reported as `"none"` by get_global_info).
    pub token: String,
    pub update_cmd: String,
    pub update_pid: i64,
    pub update_timeout: i64,
    /// CLOCK_MONOTONIC seconds when the update began; 0 = none.
    pub update_begin: u64,
}

/// The envelope fields every request carries.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub request: &'a str,
    pub token: &'a str,
    pub pid: i64,
    pub cmd: &'a str,
    pub update_timeout: i64,
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Seconds of CLOCK_MONOTONIC, like C's `_monotonic_seconds` (never 0 once running, so that
/// `update_begin = 0` keeps meaning "no update").
fn monotonic_seconds() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_or(0, |ts| u64::try_from(ts.tv_sec()).unwrap_or(0))
}

impl Default for TokenState {
    fn default() -> Self {
        TokenState::new()
    }
}

impl TokenState {
    pub fn new() -> TokenState {
        TokenState {
            token: String::new(),
            update_cmd: String::new(),
            update_pid: 0,
            update_timeout: 0,
            update_begin: 0,
        }
    }

    fn now(&self) -> u64 {
        monotonic_seconds()
    }

    fn mismatch(&self, received: &str, reason: &str) -> Response {
        Response::simple(
            "token_mismatch",
            vec![
                ("expected", SimpleField::Str(self.token.clone())),
                ("received", SimpleField::Str(received.to_owned())),
                ("update_pid", SimpleField::Int(self.update_pid)),
                ("reason", SimpleField::Str(reason.to_owned())),
            ],
        )
    }

    fn begin(&mut self, env: &Envelope) {
        self.token = truncate(env.token, TOKEN_MAX);
        self.update_begin = self.now();
        self.update_timeout = env.update_timeout;
        self.update_pid = env.pid;
        self.update_cmd = truncate(env.cmd, CMD_MAX);
    }

    fn clear_update(&mut self) {
        self.update_begin = 0;
        self.update_timeout = 0;
        self.update_pid = 0;
        self.update_cmd.clear();
    }

    /// `token_update`.
    pub fn update(&mut self, env: &Envelope) -> Response {
        let prev_ip = self.token == IN_PROGRESS;
        let this_ip = env.token == IN_PROGRESS;
        let mut prev_token = String::new();
        match (prev_ip, this_ip) {
            (false, true) => {
                prev_token = std::mem::take(&mut self.token);
                self.begin(env);
            }
            (true, true) => {
                let gap = self.now().saturating_sub(self.update_begin);
                if (gap as i128) < i128::from(self.update_timeout) {
                    return Response::simple(
                        "token_updating",
                        vec![
                            ("expected", SimpleField::Str(self.token.clone())),
                            ("update_pid", SimpleField::Int(self.update_pid)),
                            (
                                "reason",
                                SimpleField::Str("another command has populated the cache".into()),
                            ),
                        ],
                    );
                }
                log_warn!(
                    "token_update replacing pid {} begin {} len {} cmd {}",
                    self.update_pid,
                    self.update_begin,
                    gap,
                    self.update_cmd
                );
                prev_token = std::mem::take(&mut self.token);
                self.begin(env);
            }
            (true, false) => {
                if self.update_pid != env.pid {
                    return self.mismatch(env.token, "another command has populated the cache");
                }
                prev_token = std::mem::replace(&mut self.token, truncate(env.token, TOKEN_MAX));
                self.clear_update();
            }
            (false, false) => {}
        }
        Response::simple(
            "OK",
            vec![
                ("prev_token", SimpleField::Str(prev_token)),
                ("update_pid", SimpleField::Int(self.update_pid)),
            ],
        )
    }

    /// The check every other request passes; `Some(reply)` refuses it.
    pub fn check(&self, env: &Envelope) -> Option<Response> {
        if env.token != self.token && env.request != "dump" && env.token != "skip" {
            return Some(self.mismatch(env.token, "another command has populated the cache"));
        }
        if env.token == IN_PROGRESS
            && self.update_pid != 0
            && env.pid != 0
            && env.pid != self.update_pid
        {
            return Some(
                self.mismatch(env.token, "another command has populated the lvmetad cache"),
            );
        }
        None
    }

    /// get_global_info's timeout rule: an update older than its timeout is abandoned and the
    /// token dropped, so the next command repopulates.
    pub fn expire(&mut self) {
        if self.update_begin != 0 && self.update_timeout != 0 {
            let gap = self.now().saturating_sub(self.update_begin);
            if (gap as i128) >= i128::from(self.update_timeout) {
                log_warn!(
                    "update timeout {} reached after {} s (pid {} cmd {}): clearing token",
                    self.update_timeout,
                    gap,
                    self.update_pid,
                    self.update_cmd
                );
                self.token.clear();
                self.clear_update();
            }
        }
    }

    /// Forget the token (as an expired update does) so that the next lvm command sees
    /// `token = "none"` and repopulates the cache; not while an update runs. True if dropped.
    pub fn drop_for_rescan(&mut self) -> bool {
        if self.token.is_empty() || self.token == IN_PROGRESS {
            return false;
        }
        self.token.clear();
        true
    }

    /// The token as get_global_info reports it.
    pub fn shown(&self) -> &str {
        if self.token.is_empty() {
            "none"
        } else {
            &self.token
        }
    }

    /// Test hook: pretend the update began `secs` seconds earlier.
    #[cfg(test)]
    pub fn age_update(&mut self, secs: u64) {
        self.update_begin = self.update_begin.saturating_sub(secs).max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(token: &'a str, pid: i64, timeout: i64) -> Envelope<'a> {
        Envelope {
            request: "token_update",
            token,
            pid,
            cmd: "pvscan",
            update_timeout: timeout,
        }
    }

    fn text(r: &Response) -> Vec<(String, String)> {
        match r {
            Response::Simple(f) => f
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        SimpleField::Str(s) => s.clone(),
                        SimpleField::Int(i) => i.to_string(),
                        SimpleField::Raw(s) => s.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
            _ => panic!("not simple"),
        }
    }

    fn get<'a>(f: &'a [(String, String)], k: &str) -> &'a str {
        &f.iter().find(|(x, _)| x == k).unwrap().1
    }

    #[test]
    fn begin_end_and_noop() {
        let mut t = TokenState::new();
        let r = text(&t.update(&env(IN_PROGRESS, 100, 10)));
        assert_eq!(get(&r, "response"), "OK");
        assert_eq!(get(&r, "prev_token"), "");
        assert_eq!(get(&r, "update_pid"), "100");
        // another updater inside the timeout is refused
        let r = text(&t.update(&env(IN_PROGRESS, 200, 10)));
        assert_eq!(get(&r, "response"), "token_updating");
        // the wrong pid cannot end it
        let r = text(&t.update(&env("filter:1", 200, 10)));
        assert_eq!(get(&r, "response"), "token_mismatch");
        let r = text(&t.update(&env("filter:1", 100, 10)));
        assert_eq!(get(&r, "prev_token"), IN_PROGRESS);
        assert_eq!(get(&r, "update_pid"), "0");
        assert_eq!(t.token, "filter:1");
        // not-IP to not-IP changes nothing
        let r = text(&t.update(&env("filter:2", 5, 10)));
        assert_eq!(get(&r, "prev_token"), "");
        assert_eq!(t.token, "filter:1");
    }

    #[test]
    fn takeover_after_timeout_and_expiry() {
        let mut t = TokenState::new();
        t.update(&env(IN_PROGRESS, 1, 0));
        let r = text(&t.update(&env(IN_PROGRESS, 2, 10)));
        assert_eq!(get(&r, "prev_token"), IN_PROGRESS);
        assert_eq!(get(&r, "update_pid"), "2");
        t.age_update(11);
        t.expire();
        assert_eq!(t.shown(), "none");
        assert_eq!(t.update_pid, 0);
    }

    #[test]
    fn check_rules() {
        let mut t = TokenState::new();
        let e = |req: &'static str, tok: &'static str, pid| Envelope {
            request: req,
            token: tok,
            pid,
            cmd: "x",
            update_timeout: 0,
        };
        assert!(t.check(&e("vg_list", "filter:0", 1)).is_some());
        assert!(t.check(&e("dump", "filter:0", 1)).is_none());
        assert!(t.check(&e("vg_list", "skip", 1)).is_none());
        t.update(&env(IN_PROGRESS, 7, 10));
        assert!(t.check(&e("pv_found", IN_PROGRESS, 7)).is_none());
        let r = text(&t.check(&e("pv_found", IN_PROGRESS, 8)).unwrap());
        assert_eq!(
            get(&r, "reason"),
            "another command has populated the lvmetad cache"
        );
    }
}
