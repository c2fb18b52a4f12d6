//! The window's commands. Each is generic over the Tauri runtime (so `tauri::test` drives it)
//! and fails with a typed [`CommandError`], never a bare string.

use std::sync::{Arc, Mutex};

use agent_runtime::colleagues::{
    Colleagues, ColleaguesError, Favourites, Person, Profile, Watched,
};
use agent_runtime::config::{Config, ConfigPaths, UiSection};
use agent_runtime::demo::DemoPeer;
use agent_runtime::history::{CallRecord, History, Recorder};
use agent_runtime::phone::{CallNumber, Phone, PhoneEvent, Registration};
use agent_runtime::photos::PhotoCache;
use agent_runtime::presence_writer::{CallActivity, PresenceWriter, WriterReport};
use agent_runtime::{Agent, AgentError};
use graph_client::presence::Activity;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, Runtime, State};

/// What the window shows before any event: set at start and kept current by the phone; and
/// where the settings are (the OS locations, or a test's).
#[derive(Debug)]
pub struct AppState {
    paths: Option<ConfigPaths>,
    inner: Mutex<Inner>,
    calls: Mutex<CallLog>,
    /// Where each Microsoft 365 account's favourites are kept (`<data>/favourites/<id>.json`).
    favourites: Option<std::path::PathBuf>,
    /// One change of a favourites file at a time.
    favourites_change: tokio::sync::Mutex<()>,
    /// Held across the connection's network round trips, hence tokio's.
    teams: tokio::sync::Mutex<TeamsState>,
    /// One change of the settings file at a time (each reads, changes and writes it whole).
    settings_change: tokio::sync::Mutex<()>,
    /// One start of the phone at a time (the old one stops before the new one binds).
    phone_start: tokio::sync::Mutex<()>,
    /// The Teams activity the calls mean; the presence writer follows it while signed in.
    activity: tokio::sync::watch::Sender<Activity>,
    /// Counts sign-ins cancelled: a sign-in waiting for the browser or a device code stops
    /// when it changes.
    sign_in_cancel: tokio::sync::watch::Sender<u64>,
    /// The device code shown, and the sign-in it belongs to (the cancel count when it was
    /// made), until its sign-in is finished or cancelled.
    device_code: tokio::sync::Mutex<Option<(graph_client::device_code::DeviceCode, u64)>>,
    /// The last link the app was opened with, until the window takes it.
    link: Mutex<Option<String>>,
    /// Desktop notifications of the calls, once the app has started it.
    notifier: Mutex<Option<crate::notifier::Notifier>>,
    /// The global shortcuts and what came of taking them.
    shortcuts: Mutex<Vec<crate::shortcuts::ShortcutStatus>>,
}

/// Recent calls: the recorder following the phone's events, and the file they are kept in
/// (or why there is none).
#[derive(Debug)]
struct CallLog {
    recorder: Recorder,
    history: Result<History, String>,
    /// What the calls mean for the agent's Teams presence.
    activity: CallActivity,
    /// The calls as the tray and the global shortcuts see them.
    list: agent_runtime::call_list::CallList,
}

#[derive(Debug, Default)]
struct Inner {
    phone: Option<Arc<Phone>>,
    phone_error: Option<String>,
    registration: Option<Registration>,
    demo: Option<DemoPeer>,
    audio: Option<String>,
}

impl AppState {
    /// The state of an app whose settings are at `paths`, and whose call history and
    /// favourites are in `data` (`None`: there is no home directory, and every command that
    /// needs them says so).
    pub fn new(paths: Option<ConfigPaths>, data: Option<&std::path::Path>) -> Self {
        let history = data.map(|d| d.join("history.jsonl"));
        let history = match history {
            Some(path) => History::open(&path).map_err(|e| e.to_string()),
            None => Err("no home directory to keep the call history in".to_owned()),
        };
        if let Err(error) = &history {
            tracing::warn!(%error, "calls will not be kept");
        }
        let calls = Mutex::new(CallLog {
            recorder: Recorder::default(),
            history,
            activity: CallActivity::default(),
            list: agent_runtime::call_list::CallList::default(),
        });
        let favourites = data.map(|d| d.join("favourites"));
        Self {
            paths,
            inner: Mutex::default(),
            calls,
            favourites,
            favourites_change: tokio::sync::Mutex::default(),
            teams: tokio::sync::Mutex::default(),
            settings_change: tokio::sync::Mutex::default(),
            phone_start: tokio::sync::Mutex::default(),
            activity: tokio::sync::watch::channel(Activity::Available).0,
            sign_in_cancel: tokio::sync::watch::channel(0).0,
            device_code: tokio::sync::Mutex::default(),
            link: Mutex::default(),
            notifier: Mutex::default(),
            shortcuts: Mutex::default(),
        }
    }

    /// The settings, history and favourites at the OS locations.
    pub fn system() -> Self {
        Self::new(ConfigPaths::system(), agent_runtime::data_dir().as_deref())
    }

    /// Follows one phone event: a call that ended goes into the history, and the agent's Teams
    /// activity follows the calls.
    fn record(&self, event: &PhoneEvent) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let mut log = self.calls();
        log.list.observe(event);
        let activity = log.activity.observe(event);
        self.activity.send_if_modified(|current| {
            let changed = *current != activity;
            *current = activity;
            changed
        });
        let Some(record) = log.recorder.observe(event, now_ms) else { return };
        if let Ok(history) = &mut log.history
            && let Err(error) = history.add(record)
        {
            tracing::warn!(%error, "a call could not be kept in the history");
        }
    }

    fn config(&self) -> Result<Config, CommandError> {
        let paths = self.paths.clone().ok_or_else(|| {
            CommandError::Settings("no home directory to keep settings in".into())
        })?;
        Config::load(paths).map_err(|e| CommandError::Settings(e.to_string()))
    }

    /// Starts the desktop notifications of the calls.
    pub(crate) fn start_notifier<R: Runtime>(&self, app: AppHandle<R>) {
        let notifier = crate::notifier::Notifier::start(app);
        *self.notifier.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(notifier);
    }

    /// The words shown outside the window, in its language.
    pub(crate) fn words(&self) -> crate::words::Words {
        let language = self.config().ok().map(|c| c.settings().ui.language);
        crate::words::Words::for_language(language.unwrap_or_default())
    }

    /// `[shortcuts]` as set (the defaults when the settings cannot be read).
    pub(crate) fn shortcut_settings(&self) -> agent_runtime::config::ShortcutsSection {
        self.config().map(|c| c.settings().shortcuts.clone()).unwrap_or_default()
    }

    /// Keeps what came of taking the global shortcuts, for the settings.
    pub(crate) fn set_shortcuts(&self, statuses: Vec<crate::shortcuts::ShortcutStatus>) {
        *self.shortcuts.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = statuses;
    }

    /// What the quick actions act on now, and whether that call is ringing.
    pub(crate) fn quick_actions(&self) -> (agent_runtime::call_list::QuickActions, bool) {
        let log = self.calls();
        let ringing =
            matches!(log.list.standing(), agent_runtime::call_list::Standing::Ringing { .. });
        (log.list.actions(), ringing)
    }

    /// How things stand, for the tray's first line.
    pub(crate) fn standing(&self) -> agent_runtime::call_list::Standing {
        self.calls().list.standing()
    }

    /// Keeps the link the app was opened with, for the window to take.
    pub(crate) fn set_link(&self, text: String) {
        *self.link.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(text);
    }

    /// `work`'s outcome, or [`CommandError::Cancelled`] if a sign-in is cancelled first.
    async fn unless_cancelled<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, agent_runtime::m365::M365Error>>,
    ) -> Result<T, CommandError> {
        let now = *self.sign_in_cancel.borrow();
        self.unless_cancelled_since(now, work).await
    }

    /// `work`'s outcome, or [`CommandError::Cancelled`] if a sign-in was cancelled since the
    /// cancel count was `generation` (also before this began).
    async fn unless_cancelled_since<T>(
        &self,
        generation: u64,
        work: impl std::future::Future<Output = Result<T, agent_runtime::m365::M365Error>>,
    ) -> Result<T, CommandError> {
        let mut cancelled = self.sign_in_cancel.subscribe();
        if *cancelled.borrow_and_update() != generation {
            return Err(CommandError::Cancelled);
        }
        tokio::select! {
            result = work => Ok(result?),
            _ = cancelled.changed() => Err(CommandError::Cancelled),
        }
    }

    /// Refuses a change of `what` (which restarts the phone) while a call is in progress.
    fn no_call_in_progress(&self, what: &str) -> Result<(), CommandError> {
        if self.calls().recorder.in_progress() > 0 {
            return Err(CommandError::Settings(format!(
                "{what} can change only once no call is in progress"
            )));
        }
        Ok(())
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, CallLog> {
        // As with `lock`: the data outlives a panic.
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The phone, waiting up to ten seconds while it starts or restarts (after a settings
    /// change) rather than refusing at once.
    async fn ready_phone(&self) -> Result<Arc<Phone>, CommandError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match self.phone() {
                Err(CommandError::NotReady) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    pub(crate) fn phone(&self) -> Result<Arc<Phone>, CommandError> {
        let inner = self.lock();
        inner.phone.clone().ok_or_else(|| match &inner.phone_error {
            Some(reason) => CommandError::PhoneFailed(reason.clone()),
            None => CommandError::NotReady,
        })
    }
}

/// Why a command failed.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "camelCase")]
pub enum CommandError {
    #[error("the phone is still starting")]
    NotReady,
    #[error("the phone could not start: {0}")]
    PhoneFailed(String),
    /// The dialler's text is not something to call.
    #[error("{0}")]
    Dial(String),
    /// The call could not be placed or controlled.
    #[error("{0}")]
    Call(String),
    /// Settings could not be read or saved (a locked key says so).
    #[error("{0}")]
    Settings(String),
    #[error("the password could not be kept in the system keyring: {0}")]
    Keyring(String),
    #[error("the demo line could not start: {0}")]
    Demo(String),
    #[error("{0}")]
    History(String),
    /// Microsoft 365 sign-in failed, was declined, or is needed again.
    #[error("{0}")]
    SignIn(String),
    /// Microsoft 365 is not set up here (no application id): there is nothing to sign in to.
    #[error("{0}")]
    NotConfigured(String),
    /// Microsoft Graph refused or failed a people search, photo or presence request.
    #[error("{0}")]
    Teams(String),
    #[error("{0}")]
    Favourites(String),
    /// A test of the SIP account did not register.
    #[error("{0}")]
    Connection(String),
    /// The user cancelled (a sign-in); nothing to show.
    #[error("cancelled")]
    Cancelled,
}

impl From<agent_runtime::m365::M365Error> for CommandError {
    fn from(error: agent_runtime::m365::M365Error) -> Self {
        use agent_runtime::m365::M365Error;
        match error {
            M365Error::Auth(graph_client::AuthError::Settings { .. }) => {
                CommandError::NotConfigured(error.to_string())
            }
            error => CommandError::SignIn(error.to_string()),
        }
    }
}

impl From<AgentError> for CommandError {
    fn from(error: AgentError) -> Self {
        CommandError::Call(error.to_string())
    }
}

/// The SIP account, as the status bar shows it.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct AccountSummary {
    pub registrar: String,
    pub address: String,
    /// As `[sip]` has them, for the account form.
    pub user: String,
    pub domain: Option<String>,
}

/// Everything the window needs at start.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    pub version: String,
    /// `null` while starting; the reason when it could not start.
    pub phone_ready: bool,
    pub phone_error: Option<String>,
    pub registration: Option<Registration>,
    pub account: Option<AccountSummary>,
    /// The demo line's address, once started.
    pub demo: Option<String>,
    /// The sound devices in use, or why there are none.
    pub audio: Option<String>,
    /// Settings policy fixes (the first-run form shows them locked).
    pub locked: Vec<String>,
    /// The global shortcuts and whether they could be taken.
    pub shortcuts: Vec<crate::shortcuts::ShortcutStatus>,
    /// The window's language and theme.
    pub ui: UiSection,
    /// Sound devices, codecs and encryption, as the settings say.
    pub calls: CallSettings,
}

/// The settings of calls the window changes: devices (`default` or a device's id or name),
/// codecs in order of preference, SRTP.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct CallSettings {
    pub input: String,
    pub output: String,
    pub ringer: String,
    /// Comma-separated, most preferred first: `opus`, `g722`, `pcmu`, `pcma`.
    pub codecs: String,
    pub srtp: agent_runtime::config::SrtpSetting,
}

/// A sound device the settings can choose.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct SoundDevice {
    /// What the settings keep (stable across restarts and re-plugging).
    pub id: String,
    pub name: String,
    /// A microphone (else a speaker or headset output).
    pub input: bool,
    /// The system's default for its direction now.
    pub is_default: bool,
}

/// The first-run form.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct AccountForm {
    /// The contact center's SBC, e.g. `sip:sbc.example.com;transport=tls`.
    pub registrar: String,
    pub user: String,
    /// The SIP domain, when it differs from the registrar's host.
    pub domain: Option<String>,
    pub password: String,
}

/// Starts (or restarts) the phone from the settings; failures show in the status.
pub(crate) async fn start_phone<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<AppState>();
    let _one_at_a_time = state.phone_start.lock().await;
    let previous = {
        let mut inner = state.lock();
        // Starting again: an earlier start's failure is not this one's.
        inner.phone_error = None;
        inner.phone.take()
    };
    if let Some(mut previous) = previous {
        // The old phone hangs up, unregisters and frees its SIP port before the new one binds
        // it: a command still holding it (a moment) is waited for.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            match Arc::try_unwrap(previous) {
                Ok(phone) => {
                    phone.stop().await;
                    break;
                }
                Err(shared) if std::time::Instant::now() < deadline => {
                    previous = shared;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(_) => {
                    tracing::warn!("the old phone is still in use; starting the new one anyway");
                    break;
                }
            }
        }
    }
    let result = build_phone(app).await;
    let mut inner = state.lock();
    match result {
        Ok((phone, audio)) => {
            inner.phone = Some(Arc::new(phone));
            inner.phone_error = None;
            inner.audio = Some(audio);
        }
        Err(error) => {
            tracing::error!(%error, "the phone could not start");
            inner.phone_error = Some(error.to_string());
        }
    }
}

async fn build_phone<R: Runtime>(app: &AppHandle<R>) -> Result<(Phone, String), CommandError> {
    let config = app.state::<AppState>().config()?;
    let mut settings = config.sip_settings().map_err(|e| CommandError::Settings(e.to_string()))?;
    // Sound devices, when there are any: without them calls still work, silently.
    let mut audio = match config.audio() {
        Ok(devices) => {
            let label = devices_label(&devices);
            settings.audio = Some(devices);
            label
        }
        Err(error) => format!("no sound devices: {error}"),
    };
    let agent = match Agent::start(&settings).await {
        Ok(agent) => agent,
        Err(AgentError::Audio(error)) => {
            tracing::warn!(%error, "no sound devices; calls are silent");
            settings.audio = None;
            audio = format!("no sound devices: {error}");
            Agent::start(&settings).await?
        }
        Err(error) => return Err(error.into()),
    };
    Ok((start(app, agent, &config).await?, audio))
}

/// The devices a call uses, as the status bar's tooltip names them.
fn devices_label(devices: &audio_devices::AudioSettings) -> String {
    use audio_devices::Choice;
    let name = |choice: &Choice| match choice {
        Choice::SystemDefault => "the system's default".to_owned(),
        Choice::Device(name) => name.clone(),
    };
    if [&devices.microphone, &devices.speaker, &devices.ringer]
        .iter()
        .all(|c| matches!(c, Choice::SystemDefault))
    {
        return "system default devices".to_owned();
    }
    format!(
        "microphone {}, speaker {}, ringer {}",
        name(&devices.microphone),
        name(&devices.speaker),
        name(&devices.ringer)
    )
}

async fn start<R: Runtime>(
    app: &AppHandle<R>,
    agent: Agent,
    config: &Config,
) -> Result<Phone, CommandError> {
    let mut account = config.account().map_err(|e| CommandError::Settings(e.to_string()))?;
    if let Some(account) = &mut account {
        let aor = account.aor()?;
        account.password = agent_runtime::secrets::sip_password(&aor)
            .await
            .map_err(|e| CommandError::Keyring(e.to_string()))?;
    }
    // The phone's events go to the window from a thread of their own, in order: the history's
    // disk writes there never hold up the phone's task (SIP and media for every call).
    let (events, queue) = std::sync::mpsc::channel::<PhoneEvent>();
    let handle = app.clone();
    std::thread::Builder::new()
        .name("phone-events".into())
        .spawn(move || {
            for event in queue {
                let state = handle.state::<AppState>();
                if let PhoneEvent::Registration { registration } = &event {
                    state.lock().registration = Some(registration.clone());
                }
                // Kept before the window hears of the end, so that the history it asks for has
                // it.
                state.record(&event);
                if let Some(tray) = handle.try_state::<crate::tray::Tray<R>>() {
                    tray.refresh(&state);
                }
                let notifier = state.notifier.lock().ok().and_then(|n| n.clone());
                if let Some(notifier) = notifier {
                    notifier.observe(&event);
                }
                crate::forward(&handle, event);
            }
        })
        .map_err(|e| CommandError::PhoneFailed(format!("no thread for the phone's events: {e}")))?;
    Ok(Phone::start(agent, account, move |event| {
        // The thread ends with the phone (this sender goes with it).
        let _ = events.send(event);
    }))
}

/// What the window shows at start.
#[tauri::command]
#[specta::specta]
pub async fn status<R: Runtime>(
    _app: AppHandle<R>,
    state: State<'_, AppState>,
) -> Result<AppStatus, CommandError> {
    // The UI asks for the status as soon as its script runs: the window is interactive.
    static FIRST: std::sync::Once = std::sync::Once::new();
    FIRST.call_once(|| {
        if let Some(started) = crate::STARTED.get() {
            tracing::info!(after_ms = started.elapsed().as_millis() as u64, "window interactive");
        }
    });
    let config = state.config()?;
    let account = config.account().map_err(|e| CommandError::Settings(e.to_string()))?.map(|a| {
        AccountSummary {
            address: a.aor().unwrap_or_default(),
            user: a.user.clone(),
            domain: a.domain.clone(),
            registrar: a.registrar,
        }
    });
    let inner = state.lock();
    Ok(AppStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        phone_ready: inner.phone.is_some(),
        phone_error: inner.phone_error.clone(),
        registration: inner.registration.clone(),
        account,
        demo: inner.demo.as_ref().map(|d| d.uri().to_owned()),
        audio: inner.audio.clone(),
        locked: config.locked().iter().cloned().collect(),
        shortcuts: state
            .shortcuts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        ui: config.settings().ui.clone(),
        calls: CallSettings {
            input: config.settings().audio.input.clone(),
            output: config.settings().audio.output.clone(),
            ringer: config.settings().audio.ringer.clone(),
            // As the phone reads them ("alaw" is pcma), for the settings screen.
            codecs: agent_runtime::config::parse_codecs(&config.settings().media.codecs)
                .map(|list| list.iter().map(|c| c.config_name()).collect::<Vec<_>>().join(","))
                .unwrap_or_else(|_| config.settings().media.codecs.clone()),
            srtp: config.settings().media.srtp,
        },
    })
}

/// Saves the SIP account from the first-run form (the password into the system keyring,
/// never into the settings file) and restarts the phone with it.
#[tauri::command]
#[specta::specta]
pub async fn save_account<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    form: AccountForm,
) -> Result<(), CommandError> {
    let _one_at_a_time = state.settings_change.lock().await;
    // The phone restarts with the account.
    state.no_call_in_progress("the account")?;
    let mut config = state.config()?;
    let domain = form.domain.as_deref().map(str::trim).filter(|d| !d.is_empty());
    let mut set = |key: &str, value: &str| {
        config.set(key, value.trim()).map_err(|e| CommandError::Settings(e.to_string()))
    };
    set("sip.registrar", &form.registrar)?;
    set("sip.user", &form.user)?;
    match domain {
        Some(domain) => set("sip.domain", domain)?,
        // Emptied: the registrar's host is the domain again.
        None if config.settings().sip.domain.is_some() && !config.is_locked("sip.domain") => {
            config.unset("sip.domain").map_err(|e| CommandError::Settings(e.to_string()))?;
        }
        None => {}
    }
    let account = config
        .account()
        .map_err(|e| CommandError::Settings(e.to_string()))?
        .ok_or_else(|| CommandError::Settings("the registrar is empty".into()))?;
    if !form.password.is_empty() {
        let secret = sip_engine::Secret::new(form.password);
        agent_runtime::secrets::store_sip_password(&account.aor()?, &secret)
            .await
            .map_err(|e| CommandError::Keyring(e.to_string()))?;
    }
    start_phone(&app).await;
    Ok(())
}

/// The link the app was last opened with, as the dialler's text, once (`null` when none is
/// waiting). The window asks when it loads; later links also come as the `link-update` event.
#[tauri::command]
#[specta::specta]
pub fn take_link(state: State<'_, AppState>) -> Option<String> {
    state.link.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
}

/// How long [`test_account`] waits for the registrar.
const ACCOUNT_TEST: std::time::Duration = std::time::Duration::from_secs(10);

/// Registers the account in `form` once, from a port of its own, and unregisters it again:
/// whether the registrar can be reached and takes the credentials, before they are saved.
/// An empty password means the one kept for that address. Nothing is saved.
#[tauri::command]
#[specta::specta]
pub async fn test_account(
    state: State<'_, AppState>,
    form: AccountForm,
) -> Result<String, CommandError> {
    let config = state.config()?;
    let settings_error =
        |e: agent_runtime::config::ConfigError| CommandError::Settings(e.to_string());
    let registrar = form.registrar.trim();
    if registrar.is_empty() || form.user.trim().is_empty() {
        return Err(CommandError::Settings("the registrar and the user name are needed".into()));
    }
    let mut account = agent_runtime::Account {
        registrar: registrar.to_owned(),
        user: form.user.trim().to_owned(),
        domain: form.domain.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_owned),
        auth_user: config.settings().sip.auth_user.clone(),
        password: None,
        expires: 60,
        transport: config.sip_transport().map_err(settings_error)?,
        // Not the phone's own flow: a test must not replace its binding (RFC 5626 instance).
        outbound: false,
    };
    account.password = if form.password.is_empty() {
        agent_runtime::secrets::sip_password(&account.aor()?)
            .await
            .map_err(|e| CommandError::Keyring(e.to_string()))?
    } else {
        Some(sip_engine::Secret::new(form.password))
    };
    // The phone's own account, registered now: registering it a second time could replace the
    // phone's binding (registrars that keep one contact per account) and would remove it when
    // the test unregisters. Its registration is the answer.
    let aor = account.aor()?;
    let phone_aor = config.account().ok().flatten().and_then(|a| a.aor().ok());
    let registered = matches!(state.lock().registration, Some(Registration::Registered { .. }));
    if registered && phone_aor.as_deref() == Some(aor.as_str()) {
        return Ok(format!(
            "{} accepts {aor}: the phone is registered with it now",
            account.registrar
        ));
    }
    let mut settings = config.sip_settings().map_err(settings_error)?;
    settings.bind.addr.set_port(0);
    settings.instance_id = None;
    let mut agent = Agent::start(&settings).await?;
    let result = register_once(&mut agent, &account).await;
    agent.shutdown().await;
    result
}

/// Registers, waits for the answer (at most [`ACCOUNT_TEST`]) and unregisters.
async fn register_once(
    agent: &mut Agent,
    account: &agent_runtime::Account,
) -> Result<String, CommandError> {
    let id = agent.register(account).await?;
    let outcome = tokio::time::timeout(ACCOUNT_TEST, async {
        while let Some(event) = agent.next_event().await {
            match event {
                agent_runtime::AgentEvent::Sip(sip_engine::Event::Registered { .. }) => {
                    return Ok(());
                }
                agent_runtime::AgentEvent::Sip(sip_engine::Event::RegistrationFailed {
                    error,
                    ..
                }) => return Err(error.to_string()),
                _ => {}
            }
        }
        Err("the SIP driver stopped".to_owned())
    })
    .await;
    match outcome {
        Ok(Ok(())) => {
            // The binding goes again before the agent stops (its answer, or a few seconds).
            if agent.unregister(id).await.is_ok() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(3), async {
                    while let Some(event) = agent.next_event().await {
                        if let agent_runtime::AgentEvent::Sip(sip_engine::Event::Unregistered {
                            ..
                        }) = event
                        {
                            break;
                        }
                    }
                })
                .await;
            }
            Ok(format!("{} accepted {}", account.registrar, account.aor()?))
        }
        Ok(Err(reason)) => Err(CommandError::Connection(reason)),
        Err(_) => Err(CommandError::Connection(format!(
            "no answer from {} within {} s",
            account.registrar,
            ACCOUNT_TEST.as_secs()
        ))),
    }
}

/// Starts the demo line (once) and returns its address, to call with [`dial`].
#[tauri::command]
#[specta::specta]
pub async fn start_demo<R: Runtime>(
    _app: AppHandle<R>,
    state: State<'_, AppState>,
) -> Result<String, CommandError> {
    if let Some(uri) = state.lock().demo.as_ref().map(|d| d.uri().to_owned()) {
        return Ok(uri);
    }
    let demo = DemoPeer::start().await.map_err(|e| CommandError::Demo(e.to_string()))?;
    let uri = demo.uri().to_owned();
    let mut inner = state.lock();
    match &inner.demo {
        // Two clicks raced: keep the first line.
        Some(first) => Ok(first.uri().to_owned()),
        None => {
            inner.demo = Some(demo);
            Ok(uri)
        }
    }
}

/// What the dialler's text will call: a SIP URI, or a number in E.164 at the account's domain.
#[tauri::command]
#[specta::specta]
pub fn normalize_number(state: State<'_, AppState>, text: String) -> Result<String, CommandError> {
    let config = state.config()?;
    let domain = config.account().ok().flatten().and_then(|a| a.domain().ok());
    agent_runtime::phone::dial_target(
        &text,
        domain.as_deref(),
        &config.settings().teams.default_country,
    )
    .map_err(|e| CommandError::Dial(e.to_string()))
}

/// Calls what the dialler holds; the call's number comes back, its progress as events.
#[tauri::command]
#[specta::specta]
pub async fn dial<R: Runtime>(
    _app: AppHandle<R>,
    state: State<'_, AppState>,
    target: String,
) -> Result<CallNumber, CommandError> {
    let uri = normalize_number(state.clone(), target)?;
    let phone = state.ready_phone().await?;
    Ok(phone.dial(&uri).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn answer<R: Runtime>(
    _app: AppHandle<R>,
    state: State<'_, AppState>,
    call: CallNumber,
) -> Result<(), CommandError> {
    Ok(state.phone()?.answer(call).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn decline<R: Runtime>(
    _app: AppHandle<R>,
    state: State<'_, AppState>,
    call: CallNumber,
) -> Result<(), CommandError> {
    Ok(state.phone()?.decline(call).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn hangup<R: Runtime>(
    _app: AppHandle<R>,
    state: State<'_, AppState>,
    call: CallNumber,
) -> Result<(), CommandError> {
    Ok(state.phone()?.hangup(call).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn set_muted<R: Runtime>(
    _app: AppHandle<R>,
    state: State<'_, AppState>,
    call: CallNumber,
    muted: bool,
) -> Result<(), CommandError> {
    Ok(state.phone()?.set_muted(call, muted).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn set_held<R: Runtime>(
    _app: AppHandle<R>,
    state: State<'_, AppState>,
    call: CallNumber,
    held: bool,
) -> Result<(), CommandError> {
    Ok(state.phone()?.set_held(call, held).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn send_dtmf<R: Runtime>(
    _app: AppHandle<R>,
    state: State<'_, AppState>,
    call: CallNumber,
    keys: String,
) -> Result<(), CommandError> {
    Ok(state.phone()?.send_dtmf(call, &keys).await?)
}

/// Transfers the call, blind, to what `target` holds (written as for the dialler: a number,
/// an address, a colleague's dialable address); `name` is whom it is, when the user picked a
/// person. The progress comes as `transfer` events.
#[tauri::command]
#[specta::specta]
pub async fn transfer<R: Runtime>(
    _app: AppHandle<R>,
    state: State<'_, AppState>,
    call: CallNumber,
    target: String,
    name: Option<String>,
) -> Result<(), CommandError> {
    let uri = normalize_number(state.clone(), target)?;
    Ok(state.phone()?.transfer(call, &uri, name.as_deref()).await?)
}

/// Recent calls, newest first (at most `limit`).
#[tauri::command]
#[specta::specta]
pub fn history(state: State<'_, AppState>, limit: u32) -> Result<Vec<CallRecord>, CommandError> {
    let log = state.calls();
    match &log.history {
        Ok(history) => Ok(history.recent(limit as usize)),
        Err(error) => Err(CommandError::History(error.clone())),
    }
}

/// Settings the window changes itself (the rest are the first-run form's, or the CLI's).
const WINDOW_SETTINGS: &[&str] = &["ui.language", "ui.theme", "ui.autostart"];
/// Settings of calls: the phone restarts with them, so not while a call is in progress.
const CALL_SETTINGS: &[&str] =
    &["audio.input", "audio.output", "audio.ringer", "media.codecs", "media.srtp"];

/// Changes one of the window's settings: `ui.language`, `ui.theme`, and (with no call in
/// progress; the phone restarts with them) `audio.input`, `audio.output`, `audio.ringer`,
/// `media.codecs`, `media.srtp`. Any other key, a value that does not fit, and a key fixed by
/// policy are refused with the reason.
#[tauri::command]
#[specta::specta]
pub async fn set_setting<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    key: String,
    value: String,
) -> Result<(), CommandError> {
    let restart = CALL_SETTINGS.contains(&key.as_str());
    if !restart && !WINDOW_SETTINGS.contains(&key.as_str()) {
        return Err(CommandError::Settings(format!("{key} is not changed from the window")));
    }
    if restart {
        state.no_call_in_progress("calls' settings")?;
    }
    if key == "media.codecs" {
        agent_runtime::config::parse_codecs(&value)
            .map_err(|e| CommandError::Settings(e.to_string()))?;
    }
    let _one_at_a_time = state.settings_change.lock().await;
    // Again, now that earlier changes are done: a call may have begun meanwhile.
    if restart {
        state.no_call_in_progress("calls' settings")?;
    }
    let mut config = state.config()?;
    config.set(&key, &value).map_err(|e| CommandError::Settings(e.to_string()))?;
    if restart {
        start_phone(&app).await;
    }
    if key == "ui.autostart" {
        autostart(config.settings().ui.autostart).map_err(CommandError::Settings)?;
    }
    Ok(())
}

/// Starting with the system on or off, for this very program.
fn autostart(wanted: bool) -> Result<(), String> {
    let program = std::env::current_exe().map_err(|e| e.to_string())?;
    agent_runtime::autostart::apply(wanted, &program).map_err(|e| e.to_string())
}

/// Makes starting with the system match `ui.autostart` (logged when it cannot).
pub(crate) fn apply_autostart(state: &AppState) {
    let wanted = match state.config() {
        Ok(config) => config.settings().ui.autostart,
        Err(error) => {
            tracing::warn!(%error, "settings unreadable: autostart left as it is");
            return;
        }
    };
    // Not touched unless asked for once: a user who never turned it on has nothing to remove.
    if !wanted && !agent_runtime::autostart::is_enabled() {
        return;
    }
    if let Err(error) = autostart(wanted) {
        tracing::warn!(%error, "autostart");
    }
}

/// The sound devices there are now, microphones and outputs.
#[tauri::command]
#[specta::specta]
pub async fn sound_devices() -> Result<Vec<SoundDevice>, CommandError> {
    let listed = tokio::task::spawn_blocking(audio_devices::devices::list)
        .await
        .map_err(|e| CommandError::Settings(e.to_string()))?
        .map_err(|e| CommandError::Settings(e.to_string()))?;
    Ok(listed
        .into_iter()
        .map(|d| SoundDevice {
            input: d.direction == audio_devices::Direction::Input,
            id: d.id,
            name: d.name,
            is_default: d.is_default,
        })
        .collect())
}

/// The sound levels since last asked, in dBFS (-100 for silence).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct SoundLevels {
    pub microphone_dbfs: f32,
    pub speaker_dbfs: f32,
}

/// A test sound the settings can play.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub enum SoundTest {
    /// Two seconds of ringback tone on the speaker.
    Speaker,
    /// The ringtone on the ringer device, for three seconds.
    Ringer,
}

/// How long a test sound plays.
const SPEAKER_TEST: std::time::Duration = std::time::Duration::from_secs(2);
const RINGER_TEST: std::time::Duration = std::time::Duration::from_secs(3);

/// The sound devices the phone uses, or why there are none to test.
fn sound_engine(state: &AppState) -> Result<audio_devices::AudioEngine, CommandError> {
    let phone = state.phone()?;
    phone.audio().cloned().ok_or_else(|| {
        CommandError::Settings("the phone has no sound devices (see the status bar)".into())
    })
}

/// The microphone's and the speaker's peaks since last asked; `metering` keeps the microphone
/// open for the meter (the settings ask every 100 ms while open, and `false` when they close).
#[tauri::command]
#[specta::specta]
pub fn sound_levels(
    state: State<'_, AppState>,
    metering: bool,
) -> Result<SoundLevels, CommandError> {
    let engine = sound_engine(&state)?;
    engine.meter(metering);
    let levels = engine.levels();
    Ok(SoundLevels { microphone_dbfs: levels.input_dbfs, speaker_dbfs: levels.output_dbfs })
}

/// Plays a test sound on the speaker or the ringer (not during a call).
#[tauri::command]
#[specta::specta]
pub async fn test_sound(state: State<'_, AppState>, sound: SoundTest) -> Result<(), CommandError> {
    if state.calls().recorder.in_progress() > 0 {
        return Err(CommandError::Settings("test sounds wait until no call is in progress".into()));
    }
    let engine = sound_engine(&state)?;
    // A call that began meanwhile owns the ringer and the tones: they are left to it.
    let no_call = || state.calls().recorder.in_progress() == 0;
    match sound {
        SoundTest::Speaker => {
            engine.play_tone(Some(audio_devices::Tone::Ringback));
            tokio::time::sleep(SPEAKER_TEST).await;
            if no_call() {
                engine.play_tone(None);
            }
        }
        SoundTest::Ringer => {
            engine.ring(true);
            tokio::time::sleep(RINGER_TEST).await;
            if no_call() {
                engine.ring(false);
            }
        }
    }
    Ok(())
}

/// The Microsoft 365 account signed in here, as the status bar shows it.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct M365Account {
    pub name: String,
    pub username: String,
}

impl From<&graph_client::id_token::Account> for M365Account {
    fn from(account: &graph_client::id_token::Account) -> Self {
        Self { name: account.name.clone(), username: account.username.clone() }
    }
}

fn m365(config: &Config) -> Result<agent_runtime::m365::M365, CommandError> {
    Ok(agent_runtime::m365::M365::new(config.m365())?)
}

/// Who is signed in to Microsoft 365 here (kept in the keyring), if anyone; `notConfigured`
/// where Microsoft 365 is not set up.
#[tauri::command]
#[specta::specta]
pub async fn m365_account(state: State<'_, AppState>) -> Result<Option<M365Account>, CommandError> {
    let stored = m365(&state.config()?)?.stored().await?;
    Ok(stored.map(|s| M365Account::from(&s.account)))
}

/// Signs in to Microsoft 365 in the system browser (authorization code with PKCE, the answer
/// to a loopback address); the sign-in is kept in the keyring. Returns when the browser is done.
#[tauri::command]
#[specta::specta]
pub async fn sign_in(state: State<'_, AppState>) -> Result<M365Account, CommandError> {
    let m365 = m365(&state.config()?)?;
    let browser = m365.sign_in_with_browser(|url| {
        if let Err(error) = graph_client::browser::open(url) {
            // Still listening: the page can be opened by hand on this computer.
            tracing::warn!(%error, "could not start the browser for the sign-in page");
        }
        Ok(())
    });
    let session = state.unless_cancelled(browser).await?;
    signed_in(&state, &session).await
}

/// A code to sign in with on another device (when this one has no usable browser): where to
/// enter it and for how long it holds.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCodeView {
    pub user_code: String,
    pub verification_uri: String,
    pub expires_in_secs: u32,
}

/// Starts a device code sign-in (RFC 8628), cancelling a browser sign-in under way; the code
/// comes back at once, [`finish_device_code`] waits for the user to enter it.
#[tauri::command]
#[specta::specta]
pub async fn start_device_code(state: State<'_, AppState>) -> Result<DeviceCodeView, CommandError> {
    state.sign_in_cancel.send_modify(|n| *n += 1);
    let generation = *state.sign_in_cancel.borrow();
    let m365 = m365(&state.config()?)?;
    let code = m365
        .identity()
        .start_device_code()
        .await
        .map_err(|e| CommandError::SignIn(e.to_string()))?;
    let view = DeviceCodeView {
        user_code: code.user_code.clone(),
        verification_uri: code.verification_uri.clone(),
        expires_in_secs: u32::try_from(code.expires_in).unwrap_or(u32::MAX),
    };
    // Cancelled while the code was being asked for: it is not shown.
    if *state.sign_in_cancel.borrow() != generation {
        return Err(CommandError::Cancelled);
    }
    *state.device_code.lock().await = Some((code, generation));
    Ok(view)
}

/// Waits until the device code from [`start_device_code`] is entered (or declined, expired,
/// cancelled) and keeps the sign-in.
#[tauri::command]
#[specta::specta]
pub async fn finish_device_code(state: State<'_, AppState>) -> Result<M365Account, CommandError> {
    // None left: cancelled (or never started, which comes to the same).
    let taken = state.device_code.lock().await.take();
    let (code, generation) = taken.ok_or(CommandError::Cancelled)?;
    let m365 = m365(&state.config()?)?;
    let session = state.unless_cancelled_since(generation, m365.finish_device_code(&code)).await?;
    signed_in(&state, &session).await
}

/// Stops a sign-in waiting for the browser or for a device code.
#[tauri::command]
#[specta::specta]
pub async fn cancel_sign_in(state: State<'_, AppState>) -> Result<(), CommandError> {
    state.sign_in_cancel.send_modify(|n| *n += 1);
    state.device_code.lock().await.take();
    Ok(())
}

/// After a sign-in: whatever the panel knew was the previous account's.
async fn signed_in(
    state: &AppState,
    session: &agent_runtime::m365::Session,
) -> Result<M365Account, CommandError> {
    state.teams.lock().await.reset();
    Ok(M365Account::from(&session.account))
}

/// Forgets the Microsoft 365 sign-in (the keyring entries).
#[tauri::command]
#[specta::specta]
pub async fn sign_out(state: State<'_, AppState>) -> Result<(), CommandError> {
    // Held until the sign-in is gone: nothing connects to Graph with it meanwhile. This app's
    // presence session is cleared first, while the sign-in can still do it.
    let mut teams = state.teams.lock().await;
    teams.close().await;
    m365(&state.config()?)?.sign_out().await?;
    drop(teams);
    Ok(())
}

/// At quit: the agent's Teams presence is cleared and the phone hangs up and unregisters, at
/// the same time and for a few seconds at most.
pub(crate) async fn shutdown(state: &AppState) {
    let presence = async { state.teams.lock().await.close().await };
    let phone = async {
        let phone = state.lock().phone.take();
        match phone.map(Arc::try_unwrap) {
            Some(Ok(phone)) => phone.stop().await,
            Some(Err(_)) => {
                tracing::warn!("a command still holds the phone at quit: calls are not hung up");
            }
            None => {}
        }
    };
    let both = async { tokio::join!(presence, phone) };
    if tokio::time::timeout(std::time::Duration::from_secs(5), both).await.is_err() {
        tracing::warn!("quitting before the phone and Teams presence were done");
    }
}

/// People found by [`search_people`], and whether their full profiles could be read.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    pub people: Vec<Person>,
    pub profile: Profile,
}

/// The colleagues panel's link to Microsoft Graph: made on first use after sign-in, dropped
/// at sign-in and sign-out (which ends its presence polling and any use of the sign-in).
#[derive(Debug, Default)]
pub(crate) struct TeamsState {
    link: Option<TeamsLink>,
    /// The last failure to connect and when: asked again only after [`RETRY_CONNECT`].
    failed: Option<(std::time::Instant, CommandError)>,
}

impl TeamsState {
    fn reset(&mut self) {
        self.link = None;
        self.failed = None;
    }

    /// Clears the agent's presence session (a few seconds at most), then drops the link: at
    /// sign-out (while the sign-in can still do it) and at quit.
    async fn close(&mut self) {
        if let Some(writer) = self.link.as_mut().and_then(|link| link.writer.take()) {
            writer.stop().await;
        }
        self.reset();
    }
}

#[derive(Debug)]
struct TeamsLink {
    colleagues: Arc<Colleagues>,
    watched: tokio::sync::watch::Sender<Watched>,
    poller: tauri::async_runtime::JoinHandle<()>,
    /// The agent's own presence, written from the calls (cleared at sign-out and quit).
    writer: Option<PresenceWriter>,
}

impl Drop for TeamsLink {
    fn drop(&mut self) {
        // A search or photo still under way finds the sign-in closed; polling stops now.
        self.colleagues.close();
        self.poller.abort();
    }
}

/// Searches, photos and presence go this far at most per command.
const PEOPLE_PER_SEARCH: u32 = 25;
/// Colleagues watched at most: two full `getPresencesByUserId` requests a poll.
const MAX_WATCHED: usize = 2 * graph_client::presence::MAX_IDS_PER_REQUEST;
/// A failed connection to Graph is tried again after this (not by every photo at once).
const RETRY_CONNECT: std::time::Duration = std::time::Duration::from_secs(10);

impl From<ColleaguesError> for CommandError {
    fn from(error: ColleaguesError) -> Self {
        match error {
            ColleaguesError::SignIn(error) => error.into(),
            ColleaguesError::Graph(error) => CommandError::Teams(error.to_string()),
        }
    }
}

/// The link to Graph, made (and its presence polling started) if there is none.
async fn teams<R: Runtime>(app: &AppHandle<R>) -> Result<Arc<Colleagues>, CommandError> {
    let state = app.state::<AppState>();
    let mut teams = state.teams.lock().await;
    if let Some(link) = teams.link.as_ref() {
        return Ok(link.colleagues.clone());
    }
    if let Some((at, error)) = &teams.failed
        && at.elapsed() < RETRY_CONNECT
    {
        return Err(error.clone());
    }
    let config = state.config()?;
    let colleagues = match connect(&config).await {
        Ok(colleagues) => colleagues,
        Err(error) => {
            teams.failed = Some((std::time::Instant::now(), error.clone()));
            return Err(error);
        }
    };
    let (watched, watching) = tokio::sync::watch::channel(Watched::default());
    let handle = app.clone();
    let poller = tauri::async_runtime::spawn(agent_runtime::colleagues::watch_presence(
        colleagues.clone(),
        watching,
        config.presence_polling(),
        u64::from(std::process::id()),
        move |report| crate::forward_presence(&handle, report),
    ));
    let writer = PresenceWriter::start(
        colleagues.clone(),
        state.activity.subscribe(),
        u64::from(std::process::id()),
        |report| match report {
            WriterReport::Written { availability, activity } => {
                tracing::info!(availability, activity, "Teams presence written");
            }
            WriterReport::Failed { message } => {
                tracing::warn!(%message, "Teams presence not written");
            }
            WriterReport::Cleared => tracing::info!("Teams presence cleared"),
        },
    );
    teams.failed = None;
    let writer = Some(writer);
    teams.link = Some(TeamsLink { colleagues: colleagues.clone(), watched, poller, writer });
    Ok(colleagues)
}

async fn connect(config: &Config) -> Result<Arc<Colleagues>, CommandError> {
    let m365 = m365(config)?;
    let photos = PhotoCache::system();
    if let Some(cache) = photos.clone() {
        // Colleagues not seen for a month make room.
        tauri::async_runtime::spawn_blocking(move || {
            let month = std::time::Duration::from_secs(30 * 24 * 3600);
            if let Err(error) = cache.prune(month, std::time::SystemTime::now()) {
                tracing::warn!(%error, "could not prune the photo cache");
            }
        });
    }
    Ok(Arc::new(Colleagues::connect(m365, config.dial_rule(), photos).await?))
}

/// Colleagues whose name or address starts with `text` (at most 25), each with what calling
/// them dials.
#[tauri::command]
#[specta::specta]
pub async fn search_people<R: Runtime>(
    app: AppHandle<R>,
    text: String,
) -> Result<SearchResult, CommandError> {
    if text.trim().is_empty() {
        return Ok(SearchResult { people: Vec::new(), profile: Profile::Basic });
    }
    let colleagues = teams(&app).await?;
    let (people, profile) = colleagues.search(&text, PEOPLE_PER_SEARCH, PEOPLE_PER_SEARCH).await?;
    Ok(SearchResult { people, profile })
}

/// A colleague's 48×48 photo as a `data:` URL, from the disk cache or Graph; `null` when they
/// have none (or it cannot be had now).
#[tauri::command]
#[specta::specta]
pub async fn photo<R: Runtime>(
    app: AppHandle<R>,
    id: String,
) -> Result<Option<String>, CommandError> {
    use base64::Engine as _;
    let colleagues = teams(&app).await?;
    let Some(path) = colleagues.photo(&id).await else { return Ok(None) };
    let kind = match path.extension().and_then(|e| e.to_str()) {
        Some("png") => "image/png",
        _ => "image/jpeg",
    };
    Ok(tokio::fs::read(&path).await.ok().map(|bytes| {
        format!("data:{kind};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes))
    }))
}

/// Which colleagues the panel shows (their presence is polled, with the signed-in user's own),
/// and whether the window is visible (hidden, polling slows to the background pace).
#[tauri::command]
#[specta::specta]
pub async fn watch_presence<R: Runtime>(
    app: AppHandle<R>,
    mut ids: Vec<String>,
    visible: bool,
) -> Result<(), CommandError> {
    teams(&app).await?;
    ids.truncate(MAX_WATCHED);
    let state = app.state::<AppState>();
    if let Some(link) = state.teams.lock().await.link.as_ref() {
        link.watched.send_replace(Watched { ids, visible });
    }
    Ok(())
}

/// The favourites file of the account signed in now (each account keeps its own), or `None`
/// when no one is.
async fn favourites_file(
    state: &AppState,
    config: &Config,
) -> Result<Option<std::path::PathBuf>, CommandError> {
    let dir = state.favourites.clone().ok_or_else(|| {
        CommandError::Favourites("no home directory to keep favourites in".into())
    })?;
    let Some(stored) = m365(config)?.stored().await? else { return Ok(None) };
    let id = stored.account.object_id;
    // An object id is a GUID; anything else never becomes a file name.
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(CommandError::Favourites(format!("'{id}' is not an account id")));
    }
    Ok(Some(dir.join(format!("{id}.json"))))
}

fn open_favourites(path: &std::path::Path) -> Result<Favourites, CommandError> {
    Favourites::open(path).map_err(|e| CommandError::Favourites(e.to_string()))
}

/// The signed-in account's favourite colleagues, in the order they were added, with their
/// addresses worked out again by the `[teams]` rule as it is now.
#[tauri::command]
#[specta::specta]
pub async fn favourites(state: State<'_, AppState>) -> Result<Vec<Person>, CommandError> {
    let config = state.config()?;
    let Some(path) = favourites_file(&state, &config).await? else { return Ok(Vec::new()) };
    let rule = config.dial_rule();
    let mut people = open_favourites(&path)?.people().to_vec();
    for person in &mut people {
        person.redial(&rule);
    }
    Ok(people)
}

/// Marks `person` as a favourite of the signed-in account (kept on disk), or no longer.
#[tauri::command]
#[specta::specta]
pub async fn set_favourite(
    state: State<'_, AppState>,
    person: Person,
    favourite: bool,
) -> Result<(), CommandError> {
    let path = favourites_file(&state, &state.config()?)
        .await?
        .ok_or_else(|| CommandError::Favourites("sign in to keep favourites".into()))?;
    let _one_at_a_time = state.favourites_change.lock().await;
    open_favourites(&path)?
        .set(person, favourite)
        .map_err(|e| CommandError::Favourites(e.to_string()))
}
