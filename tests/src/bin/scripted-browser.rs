//! `scripted-browser URL`: the sign-in tests' stand-in for the system browser, started by
//! `switchboard-cli signin` through `BROWSER`. It signs in as `SCRIPTED_BROWSER_USER` (or
//! presses Cancel when that is `cancel`), trusting the CA in `SCRIPTED_BROWSER_CA` (if set), and
//! appends what it saw to `SCRIPTED_BROWSER_LOG`.

use std::io::Write as _;

fn main() {
    let url = std::env::args().nth(1).expect("usage: scripted-browser URL");
    let ca = std::env::var_os("SCRIPTED_BROWSER_CA").map(std::path::PathBuf::from);
    let user = std::env::var("SCRIPTED_BROWSER_USER").expect("SCRIPTED_BROWSER_USER");
    let user = (user != "cancel").then_some(user.as_str());
    let result = switchboard_tests::browser::sign_in(&url, ca.as_deref(), user);
    let line = match &result {
        Ok(visit) => format!("{} {}\n", visit.status, visit.body),
        Err(error) => format!("error {error}\n"),
    };
    if let Ok(path) = std::env::var("SCRIPTED_BROWSER_LOG") {
        let mut log =
            std::fs::OpenOptions::new().create(true).append(true).open(path).expect("log");
        log.write_all(line.as_bytes()).expect("log");
    }
    std::process::exit(i32::from(result.is_err()));
}
