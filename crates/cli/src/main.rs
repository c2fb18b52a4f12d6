//! `switchboard-cli`: the headless agent for tests, benchmarks and automation.
//!
//! Every line on stdout is one JSON event (`listening`, `incoming`, `ringing`, `progress`,
//! `answered`, `media-changed`, `ended` with a `reason`); logs go to stderr (`RUST_LOG`).
//! Media adds `media-started` (codec, SRTP suite, address), `dtmf`, `media-problem` and, when a
//! call's audio stops, `call-stats` with its figures.
//! Sound devices (`--devices`) add `audio-opened`, `audio-moved` (with the `reason`: unplugged,
//! failed, default-changed, chosen), `audio-unavailable` and `audio-closed`.
//! Registration adds `registered`, `registration-failed` (with a `reason`), `flow-lost` and
//! `unregistered`. Microsoft 365 sign-in (`signin`, `whoami`, `signout`) is described in
//! [`signin`], Teams colleagues (`presence`, `search`, `set-presence`) in [`teams`]. `call` exits 0 when its call ended normally and 1 when it failed; `register`
//! and `listen` exit 1 when a registration fails for good (missing or refused credentials, no
//! usable keyring); usage errors exit 2.

use std::collections::HashSet;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use agent_runtime::{
    Account, Agent, AgentError, AgentEvent, BindAddr, PASSWORD_ENV, SipSettings, sleep_until,
};
use clap::{Args, Parser, Subcommand};
use media_engine::driver::MediaNotice;
use media_engine::pipeline::{MediaEvent, MediaStats};
use serde::Serialize;
use sip_engine::{CallId, Event, RegistrationId, Secret};
use tokio::time::Instant;

mod signin;
mod teams;

#[derive(Debug, Parser)]
#[command(name = "switchboard-cli", version, about = "Headless Switchboard SIP agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Wait for calls; ring, and answer or reject them as told.
    Listen(ListenArgs),
    /// Call a SIP URI and report what happens.
    Call(CallArgs),
    /// Register an account (password from SWITCHBOARD_SIP_PASSWORD), keep it registered and
    /// take calls on it as `listen` does; unregister on Ctrl-C.
    Register(ListenArgs),
    /// Show or change settings (the user's file overlaid by managed policy).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// List the sound devices (one JSON line each: id, name, direction, whether default).
    Devices,
    /// Show the microphone's level, as a settings screen's meter does: a `level` line (peak
    /// dBFS) every 100 ms.
    Meter {
        /// The microphone: a device id or name from `devices`, or `default`.
        #[arg(long, value_name = "DEVICE", default_value = "default")]
        input: String,
        /// Stop after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 5.0)]
        seconds: f64,
    },
    /// Keep the SIP password in the OS keyring (service `switchboard`, account the
    /// address-of-record).
    #[command(subcommand)]
    Password(PasswordCommand),
    /// Sign in to Microsoft 365 (settings `m365.*`) through the system browser, or with a code
    /// entered on another device; the sign-in is kept in the OS keyring.
    Signin {
        /// Show a code to enter at the verification page instead of opening a browser here
        /// (for virtual desktops and machines without a browser).
        #[arg(long)]
        device_code: bool,
    },
    /// Show the signed-in Microsoft 365 account, renewing its tokens from the keyring (exit 3:
    /// sign in again; exit 4: not signed in).
    Whoami,
    /// Forget the Microsoft 365 sign-in on this machine.
    Signout,
    /// Teams colleagues' presence (UPNs or object ids), or with no USER the signed-in user's
    /// own: once, or with --watch as it changes, polling within the tenant's Graph budget.
    Presence {
        #[arg(value_name = "USER")]
        users: Vec<String>,
        /// Keep polling for this many seconds, printing changes.
        #[arg(long, value_name = "SECS")]
        watch: Option<f64>,
        /// Poll at the slower background pace (`teams.min_interval_background`), as for a
        /// hidden colleagues panel.
        #[arg(long, requires = "watch")]
        background: bool,
    },
    /// Find colleagues by name or address, each with the address to dial them at (setting
    /// `teams.*`).
    Search {
        text: String,
        /// At most this many results, following Graph's next pages as needed.
        #[arg(long, default_value_t = 25)]
        top: u32,
        /// Results per request (1 to 999).
        #[arg(long, default_value_t = 25)]
        page_size: u32,
        /// Fetch each person's 48×48 photo into the photo cache and print its path.
        #[arg(long)]
        photos: bool,
    },
    /// Set this app's Teams presence for the signed-in user: available, busy (= in-a-call),
    /// in-a-conference-call, away, or clear.
    SetPresence {
        state: String,
        /// How long the presence holds unless set again (5 to 240 minutes).
        #[arg(long, default_value_t = 60)]
        minutes: u64,
    },
}

#[derive(Debug, Subcommand)]
enum PasswordCommand {
    /// Store the password read from the first line of stdin.
    Set(PasswordAccount),
    /// Remove the stored password.
    Delete(PasswordAccount),
}

#[derive(Debug, Args)]
struct PasswordAccount {
    /// The user part of the address-of-record.
    #[arg(long)]
    user: String,
    /// The domain of the address-of-record, e.g. sip.example.com.
    #[arg(long)]
    domain: String,
}

#[derive(Debug, Subcommand)]
enum SettingsCommand {
    /// Print the effective settings, the files they come from and the keys policy locks.
    Show,
    /// Change one setting in the user's file, e.g. `settings set sip.user alice`.
    Set { key: String, value: String },
}

#[derive(Debug, Args)]
struct AccountArgs {
    /// Register with this registrar (a SIP URI, e.g. sip:sip.example.com).
    #[arg(long, value_name = "SIP-URI")]
    registrar: Option<String>,
    /// Domain of the address-of-record (default: the registrar's host).
    #[arg(long)]
    domain: Option<String>,
    /// Authentication user name, when it differs from --user.
    #[arg(long)]
    auth_user: Option<String>,
    /// Registration lifetime to ask for, in seconds.
    #[arg(long, default_value_t = 3600)]
    expires: u32,
    /// Transport to the registrar when its URI names none (setting `sip.transport`).
    #[arg(long, value_name = "udp|tcp|tls")]
    transport: Option<sip_engine::Transport>,
}

#[derive(Debug, Args)]
struct Common {
    /// Where to bind the SIP socket: TRANSPORT:IP:PORT (port 0 picks one).
    #[arg(long, default_value = "udp:127.0.0.1:5070")]
    bind: BindAddr,
    /// The user part of our SIP address.
    #[arg(long, default_value = "switchboard")]
    user: String,
    /// Hang up this many seconds after the call is answered.
    #[arg(long, value_name = "SECS")]
    hangup_after: Option<f64>,
    /// Send every out-of-dialog request to this SIP URI, e.g. sip:sbc.example.com;transport=tls
    /// (setting `sip.outbound_proxy`).
    #[arg(long, value_name = "SIP-URI")]
    outbound_proxy: Option<String>,
    /// Send this WAV file as the microphone (any rate, mixed to mono); silence after it.
    #[arg(long, value_name = "FILE.wav")]
    play: Option<std::path::PathBuf>,
    /// Write the received audio to this WAV file as it is decoded (16-bit mono at the codec's
    /// rate: 48 kHz Opus, 16 kHz G.722, 8 kHz G.711).
    #[arg(long, value_name = "FILE.wav")]
    record: Option<std::path::PathBuf>,
    /// Write what is sent (the encoder's input, frame by frame as it is sent) to this WAV file:
    /// with --record on the far end it shows the one-way delay.
    #[arg(long, value_name = "FILE.wav")]
    record_sent: Option<std::path::PathBuf>,
    /// Codecs to offer and accept, best first, e.g. `opus,pcmu` (setting `media.codecs`).
    #[arg(long, value_name = "LIST")]
    codec: Option<String>,
    /// Media encryption (setting `media.srtp`): RTP/AVP only, SRTP offered with RTP fallback,
    /// or SRTP only.
    #[arg(long, value_name = "off|preferred|required")]
    srtp: Option<agent_runtime::config::SrtpSetting>,
    /// Send these keys (0-9, *, #, A-D) as RFC 4733 events once the call is answered.
    #[arg(long, value_name = "KEYS")]
    dtmf: Option<String>,
    /// With --dtmf: how long after the answer to send them.
    #[arg(long, value_name = "SECS", default_value_t = 1.0, requires = "dtmf")]
    dtmf_after: f64,
    /// Transfer the answered call to this SIP URI (blind, REFER); the call ends here once the
    /// target answers. `call` then exits non-zero unless the transfer succeeded.
    #[arg(long, value_name = "SIP-URI")]
    transfer_to: Option<String>,
    /// With --transfer-to: how long after the answer to transfer.
    #[arg(long, value_name = "SECS", default_value_t = 1.0, requires = "transfer_to")]
    transfer_after: f64,
    /// Use the sound devices for calls, ringer and tones (settings `audio.*`; the system
    /// defaults unless they, or --input, --output and --ringer, name others).
    #[arg(long)]
    devices: bool,
    /// The microphone: a device id or name from `devices`, or `default` (implies --devices).
    #[arg(long, value_name = "DEVICE")]
    input: Option<String>,
    /// The speaker for calls and tones (implies --devices).
    #[arg(long, value_name = "DEVICE")]
    output: Option<String>,
    /// The device that rings for incoming calls (implies --devices).
    #[arg(long, value_name = "DEVICE")]
    ringer: Option<String>,
}

#[derive(Debug, Args)]
struct ListenArgs {
    #[command(flatten)]
    common: Common,
    /// Answer every incoming call.
    #[arg(long)]
    auto_answer: bool,
    /// With --auto-answer: ring this long before answering.
    #[arg(long, value_name = "SECS", requires = "auto_answer")]
    answer_after: Option<f64>,
    /// Decline every incoming call with this status (e.g. 486, 603).
    #[arg(long, value_name = "CODE", conflicts_with = "auto_answer", value_parser = clap::value_parser!(u16).range(300..700))]
    reject: Option<u16>,
    /// Exit after this many calls have ended.
    #[arg(long, value_name = "N")]
    max_calls: Option<u64>,
    /// Show the agent in Teams (signed in with `signin`): Available once registered, Busy / In
    /// a call while a call is connected (In a conference call when the far end is a
    /// conference focus); cleared on exit.
    #[arg(long)]
    teams_presence: bool,
    #[command(flatten)]
    account: AccountArgs,
}

#[derive(Debug, Args)]
struct CallArgs {
    /// The SIP URI to call, e.g. sip:service@127.0.0.1:5080
    target: String,
    #[command(flatten)]
    common: Common,
    /// With --registrar: register first and call through the registrar as that account.
    #[command(flatten)]
    account: AccountArgs,
}

/// A scheduled action of the CLI's own (answer later, hang up later).
#[derive(Debug, Clone, Copy)]
enum Action {
    Answer(CallId),
    Hangup(CallId),
    Dtmf(CallId),
    Transfer(CallId),
}

#[derive(Debug, Default)]
struct Schedule(Vec<(Instant, Action)>);

impl Schedule {
    fn add(&mut self, after: f64, action: Action) {
        self.0.push((Instant::now() + Duration::from_secs_f64(after.max(0.0)), action));
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.0.iter().map(|(at, _)| *at).min()
    }

    fn take_due(&mut self, now: Instant) -> Vec<Action> {
        let (due, rest) = self.0.drain(..).partition(|(at, _)| *at <= now);
        self.0 = rest;
        due.into_iter().map(|(_, a)| a).collect()
    }
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum CliEvent<'a> {
    Listening {
        address: String,
    },
    Error {
        message: &'a str,
    },
    /// The event of a registration failure the agent will not retry (the user must act).
    Fatal {
        message: &'a str,
    },
}

/// A media notice as a JSON line (never with keys: plans carry them, summaries do not).
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum MediaLine<'a> {
    MediaStarted {
        call: CallId,
        codec: &'static str,
        payload_type: u8,
        srtp: Option<&'static str>,
        rtcp_mux: bool,
        remote: String,
        send: bool,
        receive: bool,
    },
    Dtmf {
        call: CallId,
        key: char,
        duration_ms: u32,
    },
    MediaLatched {
        call: CallId,
        from: String,
    },
    MediaDropped {
        call: CallId,
        reason: &'a str,
    },
    MediaProblem {
        call: CallId,
        message: &'a str,
    },
    CallStats {
        call: CallId,
        #[serde(flatten)]
        stats: &'a MediaStats,
    },
}

fn emit_event(event: &AgentEvent) {
    let AgentEvent::Media { call, notice } = event else {
        match event {
            AgentEvent::Sip(event) => emit(event),
            AgentEvent::Audio(event) => emit(event),
            AgentEvent::Media { .. } => {}
        }
        return;
    };
    let call = *call;
    match notice {
        MediaNotice::Started { plan } => emit(&MediaLine::MediaStarted {
            call,
            codec: plan.codec.rtpmap_line(),
            payload_type: plan.payload_type,
            srtp: plan.srtp_suite(),
            rtcp_mux: plan.rtcp_mux,
            remote: plan.remote.to_string(),
            send: plan.send,
            receive: plan.receive,
        }),
        MediaNotice::Event(MediaEvent::Dtmf { key, duration_ms }) => {
            emit(&MediaLine::Dtmf { call, key: *key, duration_ms: *duration_ms });
        }
        MediaNotice::Event(MediaEvent::Latched { from }) => {
            emit(&MediaLine::MediaLatched { call, from: from.to_string() });
        }
        MediaNotice::Event(MediaEvent::Dropped { reason }) => {
            emit(&MediaLine::MediaDropped { call, reason });
        }
        MediaNotice::Problem { message } => emit(&MediaLine::MediaProblem { call, message }),
        // The running figures are for the desktop's call screen; the CLI prints the final ones.
        MediaNotice::Stats { .. } => {}
        MediaNotice::Ended { stats } => emit(&MediaLine::CallStats { call, stats }),
    }
}

/// After a call ended: its media's last notices, up to the figures (at most 2 s).
async fn await_call_stats(agent: &mut Agent, call: CallId) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, agent.next_event()).await {
        emit_event(&event);
        if let AgentEvent::Media { call: c, notice: MediaNotice::Ended { .. } } = event
            && c == call
        {
            return;
        }
    }
}

fn emit<T: Serialize>(event: &T) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader went away) must not kill the agent mid-call.
    if let Ok(line) = serde_json::to_string(event) {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log file keeps plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The PulseAudio client logs every closed connection as an error.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,pulseaudio::client::reactor=off")
                }),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            emit(&CliEvent::Error { message: &format!("cannot start runtime: {error}") });
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Listen(args) => listen(args).await,
            Command::Call(args) => call(args).await,
            Command::Register(args) if args.account.registrar.is_none() => {
                Err(AgentError::Usage("register needs --registrar SIP-URI".into()))
            }
            Command::Register(args) => listen(args).await,
            Command::Settings(command) => settings(command),
            Command::Devices => devices(),
            Command::Meter { input, seconds } => meter(&input, seconds).await,
            Command::Password(command) => password(command).await,
            Command::Signin { device_code } => signin::sign_in(device_code).await,
            Command::Whoami => signin::who_am_i().await,
            Command::Signout => signin::sign_out().await,
            Command::Presence { users, watch, background } => {
                teams::presence(&users, watch, !background).await
            }
            Command::Search { text, top, page_size, photos } => {
                teams::search(&text, top, page_size, photos).await
            }
            Command::SetPresence { state, minutes } => teams::set_presence(&state, minutes).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            emit(&CliEvent::Error { message: &error.to_string() });
            // Usage errors exit 2, as clap's own do.
            if matches!(error, AgentError::Usage(_)) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The settings file and policy (flags win over both for what they name).
fn load_config() -> Result<agent_runtime::config::Config, AgentError> {
    use agent_runtime::config::{Config, ConfigPaths};
    let paths = ConfigPaths::system()
        .ok_or_else(|| AgentError::Usage("no home directory to keep settings in".into()))?;
    Ok(Config::load(paths)?)
}

async fn start(common: &Common) -> Result<Agent, AgentError> {
    let config = load_config()?;
    let mut settings = SipSettings::new(common.bind);
    settings.media = config.media(common.bind.addr.ip())?;
    if let Some(list) = &common.codec {
        settings.media.codecs = agent_runtime::config::parse_codecs(list)
            .map_err(|e| AgentError::Usage(format!("--codec: {e}")))?;
    }
    if let Some(srtp) = common.srtp {
        settings.media.srtp = srtp.into();
    }
    if let Some(path) = &common.play {
        let clip =
            media_engine::wav::read(path).map_err(|e| AgentError::Usage(format!("--play: {e}")))?;
        settings.media_options.play = Some(std::sync::Arc::new(clip));
    }
    if common.devices
        || common.input.is_some()
        || common.output.is_some()
        || common.ringer.is_some()
    {
        use audio_devices::Choice;
        let mut audio = config.audio()?;
        for (flag, choice) in [
            (&common.input, &mut audio.microphone),
            (&common.output, &mut audio.speaker),
            (&common.ringer, &mut audio.ringer),
        ] {
            if let Some(flag) = flag {
                *choice = Choice::parse(flag);
            }
        }
        settings.audio = Some(audio);
    }
    settings.media_options.record = common.record.clone();
    settings.media_options.record_sent = common.record_sent.clone();
    settings.user = common.user.clone();
    settings.tls = config.tls();
    settings.instance_id = Some(config.instance_id()?);
    settings.dns_servers = config.dns_servers()?;
    settings.outbound_proxy =
        common.outbound_proxy.clone().or_else(|| config.settings().sip.outbound_proxy.clone());
    let agent = Agent::start(&settings).await?;
    emit(&CliEvent::Listening { address: format!("udp:{}", agent.local_addr()) });
    Ok(agent)
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn devices() -> Result<ExitCode, AgentError> {
    #[derive(Serialize)]
    struct Line<'a> {
        event: &'static str,
        #[serde(flatten)]
        device: &'a audio_devices::DeviceInfo,
    }
    for device in audio_devices::devices::list()? {
        emit(&Line { event: "device", device: &device });
    }
    Ok(ExitCode::SUCCESS)
}

async fn meter(input: &str, seconds: f64) -> Result<ExitCode, AgentError> {
    let config = load_config()?;
    let mut settings = config.audio()?;
    settings.microphone = audio_devices::Choice::parse(input);
    let engine = audio_devices::AudioEngine::start(settings, |event| emit(&event))?;
    engine.meter(true);
    #[derive(Serialize)]
    struct Level {
        event: &'static str,
        input_dbfs: f32,
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds.max(0.0));
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    ticker.tick().await;
    while Instant::now() < deadline {
        tokio::select! {
            _ = ticker.tick() => {
                let levels = engine.levels();
                emit(&Level { event: "level", input_dbfs: levels.input_dbfs });
            }
            () = stop_requested() => break,
        }
    }
    engine.meter(false);
    Ok(ExitCode::SUCCESS)
}

fn settings(command: SettingsCommand) -> Result<ExitCode, AgentError> {
    use agent_runtime::config::{Config, ConfigPaths};
    let paths = ConfigPaths::system()
        .ok_or_else(|| AgentError::Usage("no home directory to keep settings in".into()))?;
    let mut config = Config::load(paths.clone())?;
    if let SettingsCommand::Set { key, value } = &command {
        config.set(key, value).map_err(AgentError::Config)?;
    }
    #[derive(Serialize)]
    struct Shown<'a> {
        event: &'static str,
        settings: &'a agent_runtime::config::Settings,
        locked: &'a std::collections::BTreeSet<String>,
        file: String,
        policy: String,
    }
    emit(&Shown {
        event: "settings",
        settings: config.settings(),
        locked: config.locked(),
        file: paths.settings.display().to_string(),
        policy: paths.policy.display().to_string(),
    });
    Ok(ExitCode::SUCCESS)
}

async fn password(command: PasswordCommand) -> Result<ExitCode, AgentError> {
    use agent_runtime::secrets;
    #[derive(Serialize)]
    #[serde(tag = "event", rename_all = "kebab-case")]
    enum Done<'a> {
        PasswordStored { account: &'a str },
        PasswordDeleted { account: &'a str, existed: bool },
    }
    match command {
        PasswordCommand::Set(who) => {
            let account = format!("sip:{}@{}", who.user, who.domain);
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| AgentError::Usage(format!("cannot read the password: {e}")))?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(AgentError::Usage("no password on stdin".into()));
            }
            secrets::store_sip_password(&account, &Secret::new(password)).await?;
            emit(&Done::PasswordStored { account: &account });
        }
        PasswordCommand::Delete(who) => {
            let account = format!("sip:{}@{}", who.user, who.domain);
            let existed = secrets::delete_sip_password(&account).await?;
            emit(&Done::PasswordDeleted { account: &account, existed });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The SIP password: from the environment (automation), else from the OS keyring. An
/// unusable keyring is an error; an empty one means no credentials.
async fn sip_password(account: &Account) -> Result<Option<Secret>, AgentError> {
    if let Some(password) = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()) {
        return Ok(Some(Secret::new(password)));
    }
    Ok(agent_runtime::secrets::sip_password(&account.aor()?).await?)
}

/// Registers the account given on the command line, if any.
/// The account given on the command line, if any, with its password (read before the agent
/// starts, so that a missing keyring is reported first).
async fn account(common: &Common, args: &AccountArgs) -> Result<Option<Account>, AgentError> {
    let Some(registrar) = args.registrar.clone() else { return Ok(None) };
    let mut account = Account {
        registrar,
        user: common.user.clone(),
        domain: args.domain.clone(),
        auth_user: args.auth_user.clone(),
        password: None,
        expires: args.expires,
        transport: match args.transport {
            Some(transport) => Some(transport),
            // A bad `sip.transport` stays a usage error (exit 2), naming the setting.
            None => load_config()?.sip_transport().map_err(|e| AgentError::Usage(e.to_string()))?,
        },
        outbound: true,
    };
    account.password = sip_password(&account).await?;
    Ok(Some(account))
}

async fn listen(args: ListenArgs) -> Result<ExitCode, AgentError> {
    let account = account(&args.common, &args.account).await?;
    let mut agent = start(&args.common).await?;
    let registration = match &account {
        Some(account) => Some(agent.register(account).await?),
        None => None,
    };
    // With a SIP account, Teams shows the agent available only once they can take calls.
    let mut presence = if args.teams_presence && registration.is_none() {
        teams::PresenceWriter::start().await?
    } else {
        None
    };
    let mut connected: HashSet<CallId> = HashSet::new();
    // Calls whose far end is a conference focus (RFC 4579 `isfocus`).
    let mut conferences: HashSet<CallId> = HashSet::new();
    let mut schedule = Schedule::default();
    let mut active: HashSet<CallId> = HashSet::new();
    let mut ended = 0u64;
    let stop = stop_requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            event = agent.next_event() => {
                let Some(event) = event else {
                    if let Some(presence) = presence {
                        presence.stop().await;
                    }
                    return Err(AgentError::Stopped);
                };
                emit_event(&event);
                let AgentEvent::Sip(event) = event else { continue };
                match event {
                    Event::Incoming { call, .. } => {
                        active.insert(call);
                        if let Some(status) = args.reject {
                            report(agent.reject(call, status).await);
                        } else if args.auto_answer {
                            match args.answer_after {
                                Some(secs) => schedule.add(secs, Action::Answer(call)),
                                None => report(agent.answer(call).await),
                            }
                        }
                    }
                    Event::Answered { call } => {
                        connected.insert(call);
                        if let Some(presence) = &presence {
                            presence.set(agent_runtime::presence_writer::call_activity(&connected, &conferences));
                        }
                        args.common.schedule_after_answer(&mut schedule, call);
                    }
                    Event::Conference { call, focus } => {
                        if focus {
                            conferences.insert(call);
                        } else {
                            conferences.remove(&call);
                        }
                        if let Some(presence) = &presence {
                            presence.set(agent_runtime::presence_writer::call_activity(&connected, &conferences));
                        }
                    }
                    Event::Ended { call, .. } => {
                        active.remove(&call);
                        connected.remove(&call);
                        conferences.remove(&call);
                        if let Some(presence) = &presence {
                            presence.set(agent_runtime::presence_writer::call_activity(&connected, &conferences));
                        }
                        ended += 1;
                        if args.max_calls.is_some_and(|max| ended >= max) {
                            if let Some(presence) = presence {
                                presence.stop().await;
                            }
                            await_call_stats(&mut agent, call).await;
                            stop_agent(agent, registration).await;
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                    Event::Registered { .. } if args.teams_presence && presence.is_none() => {
                        presence = teams::PresenceWriter::start().await?;
                        if let Some(presence) = &presence {
                            presence.set(agent_runtime::presence_writer::call_activity(&connected, &conferences));
                        }
                    }
                    // Missing or refused credentials will not fix themselves.
                    Event::RegistrationFailed { retry_in_ms: None, error, .. } => {
                        let mut message = error.to_string();
                        if error == sip_engine::RegistrationError::CredentialsNeeded {
                            message.push_str(
                                ": store the password with `switchboard-cli password set` or \
                                 give it in SWITCHBOARD_SIP_PASSWORD",
                            );
                        }
                        emit(&CliEvent::Fatal { message: &message });
                        if let Some(presence) = presence {
                            presence.stop().await;
                        }
                        hang_up_all(&mut agent, &mut active).await;
                        agent.shutdown().await;
                        return Ok(ExitCode::FAILURE);
                    }
                    _ => {}
                }
            }
            _ = sleep_until(schedule.next_deadline()) => {
                for action in schedule.take_due(Instant::now()) {
                    // The call may have ended meanwhile; that is not an error worth reporting.
                    let _ = match action {
                        Action::Answer(call) => agent.answer(call).await,
                        Action::Hangup(call) => agent.hangup(call).await,
                        Action::Dtmf(_) | Action::Transfer(_) => args.common.act(&agent, action).await,
                    };
                }
            }
            _ = &mut stop => {
                if let Some(presence) = presence {
                    presence.stop().await;
                }
                hang_up_all(&mut agent, &mut active).await;
                stop_agent(agent, registration).await;
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

/// Unregisters (waiting at most 5 s for the registrar) and stops the agent.
async fn stop_agent(mut agent: Agent, registration: Option<RegistrationId>) {
    if let Some(registration) = registration
        && agent.unregister(registration).await.unwrap_or(false)
    {
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, agent.next_event()).await {
            emit_event(&event);
            if matches!(event, AgentEvent::Sip(Event::Unregistered { .. })) {
                break;
            }
        }
    }
    agent.shutdown().await;
}

/// Hangs up every call and waits (at most 5 s) for them to end, so peers are not left hanging.
async fn hang_up_all(agent: &mut Agent, active: &mut HashSet<CallId>) {
    for call in active.iter() {
        let _ = agent.hangup(*call).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !active.is_empty() {
        match tokio::time::timeout_at(deadline, agent.next_event()).await {
            Ok(Some(event)) => {
                emit_event(&event);
                if let AgentEvent::Sip(Event::Ended { call, .. }) = event {
                    active.remove(&call);
                }
            }
            _ => break,
        }
    }
}

async fn call(args: CallArgs) -> Result<ExitCode, AgentError> {
    let account = account(&args.common, &args.account).await?;
    let mut agent = start(&args.common).await?;
    let mut registration = None;
    if let Some(account) = &account {
        registration = Some(agent.register(account).await?);
        // The call waits for the binding: it travels on the registration's flow.
        loop {
            let Some(event) = agent.next_event().await else { return Err(AgentError::Stopped) };
            emit_event(&event);
            let AgentEvent::Sip(event) = event else { continue };
            match event {
                Event::Registered { .. } => break,
                Event::RegistrationFailed { error, .. } => {
                    emit(&CliEvent::Fatal { message: &error.to_string() });
                    agent.shutdown().await;
                    return Ok(ExitCode::FAILURE);
                }
                _ => {}
            }
        }
    }
    let id = agent.invite(&args.target).await?;
    let mut schedule = Schedule::default();
    let mut active = HashSet::from([id]);
    let stop = stop_requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            event = agent.next_event() => {
                let Some(event) = event else { return Err(AgentError::Stopped) };
                emit_event(&event);
                let AgentEvent::Sip(event) = event else { continue };
                match event {
                    Event::Answered { call } if call == id => {
                        args.common.schedule_after_answer(&mut schedule, call);
                    }
                    Event::Ended { call, reason } if call == id => {
                        await_call_stats(&mut agent, call).await;
                        stop_agent(agent, registration).await;
                        // A transfer that was asked for and did not happen is a failure too.
                        let untransferred = args.common.transfer_to.is_some()
                            && reason != sip_engine::EndReason::Transferred;
                        let failed = reason.is_failure() || untransferred;
                        return Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
                    }
                    _ => {}
                }
            }
            _ = sleep_until(schedule.next_deadline()) => {
                for action in schedule.take_due(Instant::now()) {
                    let _ = match action {
                        Action::Dtmf(_) | Action::Transfer(_) => args.common.act(&agent, action).await,
                        Action::Hangup(call) | Action::Answer(call) => agent.hangup(call).await,
                    };
                }
            }
            _ = &mut stop => {
                hang_up_all(&mut agent, &mut active).await;
                stop_agent(agent, registration).await;
                return Ok(ExitCode::FAILURE);
            }
        }
    }
}

impl Common {
    /// Plans what this run does once a call is answered: hang up, keys, transfer.
    fn schedule_after_answer(&self, schedule: &mut Schedule, call: CallId) {
        if let Some(secs) = self.hangup_after {
            schedule.add(secs, Action::Hangup(call));
        }
        if self.dtmf.is_some() {
            schedule.add(self.dtmf_after, Action::Dtmf(call));
        }
        if self.transfer_to.is_some() {
            schedule.add(self.transfer_after, Action::Transfer(call));
        }
    }

    /// Sends the keys or the transfer this run was asked for.
    async fn act(&self, agent: &Agent, action: Action) -> Result<(), AgentError> {
        match action {
            Action::Dtmf(call) => agent.send_dtmf(call, self.dtmf.as_deref().unwrap_or_default()),
            Action::Transfer(call) => {
                // Refused at once (a call not up, a bad URI): said, the call goes on.
                report(agent.transfer(call, self.transfer_to.as_deref().unwrap_or_default()).await);
                Ok(())
            }
            Action::Answer(_) | Action::Hangup(_) => Ok(()),
        }
    }
}

fn report(result: Result<(), AgentError>) {
    if let Err(error) = result {
        emit(&CliEvent::Error { message: &error.to_string() });
    }
}
