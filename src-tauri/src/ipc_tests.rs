//! The commands as the window calls them: through Tauri's IPC (`tauri::test`'s mock runtime,
//! the app's own context with its capabilities), against a real phone and the real demo line on
//! loopback. What comes back is the JSON the window receives: values, typed errors, events.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agent_runtime::config::ConfigPaths;
use serde_json::{Value, json};
use tauri::Listener as _;
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};

use crate::commands::{self, AppState};

/// An app with the real context (capabilities and all), the commands for the mock runtime, and
/// settings in `dir`; and its main window.
fn app(dir: &Path, settings: &str) -> (App<MockRuntime>, WebviewWindow<MockRuntime>) {
    std::fs::create_dir_all(dir).expect("settings dir");
    let paths =
        ConfigPaths { settings: dir.join("settings.toml"), policy: dir.join("policy.toml") };
    std::fs::write(&paths.settings, settings).expect("settings");
    let specta = crate::app_builder!(MockRuntime);
    let app = mock_builder()
        .manage(AppState::new(Some(paths), Some(dir)))
        .invoke_handler(specta.invoke_handler())
        .build(tauri::generate_context!())
        .expect("the app builds");
    specta.mount_events(&app);
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("the main window");
    (app, window)
}

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-ipc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Settings for a phone without an account, SIP on loopback, no sound devices needed.
const LOOPBACK: &str = "[sip]\nbind = \"udp:127.0.0.1:0\"\n[media]\ncodecs = \"pcmu\"\n";

/// Calls `cmd` with `args` as the window does; the value, or the error as the window gets it.
fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: tauri::ipc::CallbackFn(0),
        error: tauri::ipc::CallbackFn(1),
        url: "tauri://localhost".parse().expect("url"),
        body: tauri::ipc::InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_owned(),
    };
    get_ipc_response(window, request).map(|body| body.deserialize::<Value>().expect("JSON"))
}

/// The phone's events, as the window hears them.
fn events(app: &App<MockRuntime>) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    app.listen_any("phone-update", move |event| {
        let _ = tx.send(serde_json::from_str(event.payload()).expect("event JSON"));
    });
    rx
}

/// The first event of `kind` within ten seconds (earlier ones are passed over).
fn wait_for(events: &mpsc::Receiver<Value>, kind: &str) -> Value {
    wait_until(events, kind, |_| true)
}

/// The first event of `kind` that `wanted` accepts, within ten seconds.
fn wait_until(
    events: &mpsc::Receiver<Value>,
    kind: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) if event["kind"] == kind && wanted(&event) => return event,
            Ok(_) => {}
            Err(_) => panic!("no such {kind} event within 10 s"),
        }
    }
}

/// One event of each kind, in whatever order they come, within ten seconds.
fn wait_for_each<const N: usize>(events: &mpsc::Receiver<Value>, kinds: [&str; N]) -> [Value; N] {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found: [Option<Value>; N] = std::array::from_fn(|_| None);
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(event) = events.recv_timeout(left) else {
            panic!("not all of {kinds:?} within 10 s; had {found:?}")
        };
        if let Some(i) = kinds.iter().position(|k| event["kind"] == *k)
            && found[i].is_none()
        {
            found[i] = Some(event);
        }
    }
    found.map(|e| e.expect("found"))
}

#[test]
fn the_dialler_normalises_and_refuses_with_typed_errors() {
    let (_app, window) = app(&dir("dialler"), LOOPBACK);
    assert_eq!(
        invoke(&window, "normalize_number", json!({ "text": "alice@example.com" })),
        Ok(json!("sip:alice@example.com"))
    );
    // A number needs an account's domain to go to.
    let refused = invoke(&window, "normalize_number", json!({ "text": "+44 20 7946 0958" }))
        .expect_err("no account");
    assert_eq!(refused["kind"], "dial", "{refused}");
    assert!(refused["message"].as_str().is_some_and(|m| !m.is_empty()), "{refused}");
    // Arguments of the wrong type are refused by the IPC layer, not passed on.
    assert!(invoke(&window, "normalize_number", json!({ "text": 5 })).is_err());
}

#[test]
fn before_the_phone_starts_calls_are_refused_as_not_ready() {
    let (_app, window) = app(&dir("not-ready"), LOOPBACK);
    let status = invoke(&window, "status", json!({})).expect("status");
    assert_eq!(status["phoneReady"], false, "{status}");
    assert_eq!(status["account"], Value::Null, "{status}");
    let refused = invoke(&window, "hangup", json!({ "call": 1 })).expect_err("no phone");
    assert_eq!(refused, json!({ "kind": "notReady" }));
    // No Microsoft 365 application id in these settings: nothing to sign in to, said as such.
    let refused = invoke(&window, "m365_account", json!({})).expect_err("not set up");
    assert_eq!(refused["kind"], "notConfigured", "{refused}");
}

#[test]
fn settings_that_do_not_parse_are_a_settings_error() {
    let (_app, window) = app(&dir("bad-settings"), "[sip\nbind = ");
    let refused = invoke(&window, "status", json!({})).expect_err("bad TOML");
    assert_eq!(refused["kind"], "settings", "{refused}");
}

#[test]
fn a_demo_call_through_the_commands_connects_mutes_holds_transfers_and_hangs_up() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("sip_engine=debug,sip_transport=debug,agent_runtime=debug")
        .with_test_writer()
        .try_init();
    let (app, window) = app(&dir("demo"), LOOPBACK);
    let events = events(&app);
    tauri::async_runtime::block_on(commands::start_phone(app.handle()));
    let status = invoke(&window, "status", json!({})).expect("status");
    assert_eq!(status["phoneReady"], true, "{status}");

    let demo = invoke(&window, "start_demo", json!({})).expect("the demo line");
    let demo = demo.as_str().expect("an address").to_owned();
    assert!(demo.starts_with("sip:demo@127.0.0.1:"), "{demo}");
    // A second start gives the same line.
    assert_eq!(invoke(&window, "start_demo", json!({})), Ok(json!(demo)));

    let call = invoke(&window, "dial", json!({ "target": demo })).expect("dials");
    let dialling = wait_for(&events, "dialling");
    assert_eq!(dialling["call"], call);
    // The answer and the media's start come from different tasks, in either order.
    let [answered, media] = wait_for_each(&events, ["answered", "media"]);
    assert_eq!(answered["call"], call);
    assert_eq!(media["call"], call);
    assert_eq!(media["codec"], "PCMU/8000", "{media}");

    assert_eq!(
        invoke(&window, "set_muted", json!({ "call": call, "muted": true })),
        Ok(Value::Null)
    );
    assert_eq!(
        invoke(&window, "send_dtmf", json!({ "call": call, "keys": "5#" })),
        Ok(Value::Null)
    );
    // Hold, and resume at once: the resume waits for the hold's re-INVITE, then follows it.
    assert_eq!(invoke(&window, "set_held", json!({ "call": call, "held": true })), Ok(Value::Null));
    let hold = wait_for(&events, "hold");
    assert_eq!((hold["local"].clone(), hold["remote"].clone()), (json!(true), json!(false)));
    assert_eq!(
        invoke(&window, "set_held", json!({ "call": call, "held": false })),
        Ok(Value::Null)
    );
    wait_until(&events, "hold", |e| e["local"] == false);

    // A transfer: the demo line (our own endpoint) refuses REFER, and the call goes on. A
    // target that is not an address is the dialler's error.
    let transfer = json!({ "call": call, "target": "sip:megan@example.com", "name": "Megan" });
    assert_eq!(invoke(&window, "transfer", transfer), Ok(Value::Null));
    let asked = wait_for(&events, "transfer");
    assert_eq!((asked["stage"].clone(), asked["name"].clone()), (json!("asked"), json!("Megan")));
    let refused = wait_until(&events, "transfer", |e| e["stage"] == "refused");
    assert_eq!(refused["detail"], "405", "{refused}");
    let bad = json!({ "call": call, "target": "sip:has space@x", "name": null });
    assert_eq!(invoke(&window, "transfer", bad).expect_err("not an address")["kind"], "dial");

    // A call that does not exist is the phone's error, typed as such.
    let refused = invoke(&window, "answer", json!({ "call": 999 })).expect_err("no such call");
    assert_eq!(refused["kind"], "call", "{refused}");

    assert_eq!(invoke(&window, "hangup", json!({ "call": call })), Ok(Value::Null));
    let ended = wait_for(&events, "ended");
    assert_eq!(ended["call"], call);
    assert_eq!(ended["cause"], "local", "{ended}");

    // The call is in the history by the time the window hears it ended.
    let history = invoke(&window, "history", json!({ "limit": 10 })).expect("history");
    let calls = history.as_array().expect("a list");
    assert_eq!(calls.len(), 1, "{history}");
    assert_eq!(calls[0]["direction"], "outgoing");
    assert_eq!(calls[0]["peer"], json!(demo));
    assert_eq!(
        (calls[0]["answered"].clone(), calls[0]["cause"].clone()),
        (json!(true), json!("local"))
    );
}

#[test]
fn the_window_sets_its_language_and_theme_but_not_what_policy_fixes() {
    let dir = dir("settings");
    let (_app, window) = app(&dir, LOOPBACK);
    std::fs::write(dir.join("policy.toml"), "[ui]\ntheme = \"dark\"\n").expect("policy");
    let status = invoke(&window, "status", json!({})).expect("status");
    assert_eq!(status["ui"], json!({ "language": "auto", "theme": "dark", "autostart": false }));
    assert!(
        status["locked"].as_array().is_some_and(|l| l.contains(&json!("ui.theme"))),
        "{status}"
    );

    let set = |key: &str, value: &str| {
        invoke(&window, "set_setting", json!({ "key": key, "value": value }))
    };
    assert_eq!(set("ui.language", "ru"), Ok(Value::Null));
    let status = invoke(&window, "status", json!({})).expect("status");
    assert_eq!(status["ui"]["language"], "ru");
    let saved = std::fs::read_to_string(dir.join("settings.toml")).expect("settings");
    assert!(saved.contains("language = \"ru\""), "{saved}");

    let refused = set("ui.theme", "light").expect_err("fixed by policy");
    assert_eq!(refused["kind"], "settings");
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("policy")), "{refused}");
    let refused = set("ui.language", "tlh").expect_err("no such language");
    assert_eq!(refused["kind"], "settings", "{refused}");
    let refused = set("sip.registrar", "sip:elsewhere.example").expect_err("not the window's");
    assert_eq!(refused["kind"], "settings", "{refused}");
    // Calls' settings: checked, kept, and the phone restarts with them.
    let refused = set("media.codecs", "pcma,speex").expect_err("no such codec");
    assert_eq!(refused["kind"], "settings", "{refused}");
    assert_eq!(set("media.codecs", "pcma,pcmu"), Ok(Value::Null));
    assert_eq!(set("media.srtp", "required"), Ok(Value::Null));
    let refused = set("media.srtp", "sometimes").expect_err("no such policy");
    assert_eq!(refused["kind"], "settings", "{refused}");
    let status = invoke(&window, "status", json!({})).expect("status");
    assert_eq!(status["calls"]["codecs"], "pcma,pcmu", "{status}");
    assert_eq!(status["calls"]["srtp"], "required", "{status}");
    assert_eq!(status["phoneReady"], true, "the phone restarted: {status}");
    // Nothing refused reached the file.
    let saved = std::fs::read_to_string(dir.join("settings.toml")).expect("settings");
    assert!(!saved.contains("tlh") && !saved.contains("elsewhere"), "{saved}");
    assert!(!saved.contains("speex") && !saved.contains("sometimes"), "{saved}");
    // Every change keeps the others.
    assert!(saved.contains("language = \"ru\"") && saved.contains("[sip]"), "{saved}");
}
